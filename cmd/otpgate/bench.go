package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/provider"
)

func benchCommand() *cobra.Command {
	o := benchOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a running otpgate with complete logins",
		Long: "Run complete logins against a running otpgate, as browsers and a relying party would:\n" +
			"authorize with PKCE, phone page, phone number, code read from the dev outbox, code,\n" +
			"redirect to the relying party, token exchange. Each virtual user (-c) has its own cookie\n" +
			"jar and runs one login at a time, with a new random phone number each time (--phone-prefix\n" +
			"followed by 7 digits). A progress line is printed every second on stderr, then the\n" +
			"completed logins per second, the errors and the latency percentiles of each step.\n\n" +
			"The server must expose the dev outbox (otpgate serve --dev, on memory or on Redis with\n" +
			"OTPGATE_REDIS_URL) and register the client; --dev registers '" + provider.BenchClientID + "' (public, PKCE,\n" +
			"redirect URI " + provider.BenchRedirectURI + ", no consent), the default. The redirect URI is never\n" +
			"requested: the code is read from the redirect. The exit status is 1 when any login failed.",
		Example: "  otpgate serve --dev &\n" +
			"  otpgate bench -c 64 -d 20s\n" +
			"  otpgate bench --issuer http://127.0.0.1:8080 -c 8 -n 1000 --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Concurrency < 1 || o.Duration <= 0 || o.Logins < 0 {
				return errors.New("bench: -c must be at least 1, -d positive and -n not negative")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			o.Progress = cmd.ErrOrStderr()
			fmt.Fprintf(o.Progress, "otpgate bench: %s, client %s, %d users, %s%s\n", o.Issuer, o.ClientID, o.Concurrency, o.Duration, benchLimit(o))
			res, err := runBench(ctx, o)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				printBench(cmd.OutOrStdout(), res)
			}
			if res.Errors > 0 {
				return fmt.Errorf("%d logins failed", res.Errors)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Issuer, "issuer", "http://localhost:8080", "issuer URL of the otpgate to load")
	f.StringVar(&o.ClientID, "client-id", provider.BenchClientID, "client with skip_consent and the redirect URI registered")
	f.StringVar(&o.ClientSecret, "client-secret", "", "its secret (client_secret_basic); empty for a public client")
	f.StringVar(&o.RedirectURI, "redirect-uri", provider.BenchRedirectURI, "its registered redirect URI (never requested)")
	f.StringVar(&o.Outbox, "outbox", "", "dev outbox JSON URL to read codes from (default <issuer>/dev/outbox.json)")
	f.IntVarP(&o.Concurrency, "concurrency", "c", 16, "virtual users, each running one login at a time")
	f.DurationVarP(&o.Duration, "duration", "d", 10*time.Second, "how long new logins start")
	f.IntVarP(&o.Logins, "logins", "n", 0, "stop after this many logins (0: run for the duration)")
	f.BoolVar(&o.Pending, "pending", false, "stop each login after the phone step, leaving it pending (for memory measurements)")
	f.StringVar(&o.PhonePrefix, "phone-prefix", "+3361", "E.164 prefix of the random phone numbers (7 digits follow)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func benchLimit(o benchOptions) string {
	s := ""
	if o.Logins > 0 {
		s += fmt.Sprintf(", at most %d logins", o.Logins)
	}
	if o.Pending {
		s += ", stopping after the phone step"
	}
	return s
}

// printBench writes the result as a table.
func printBench(w io.Writer, r benchResult) {
	what := "completed logins"
	if r.Pending {
		what = "pending logins"
	}
	fmt.Fprintf(w, "\n%-17s %d in %.1fs: %.1f/s with %d users\n", what, r.Completed, r.Seconds, r.LoginsPerSecond, r.Concurrency)
	fmt.Fprintf(w, "%-17s %d\n", "errors", r.Errors)
	if r.IDTokenAlg != "" {
		fmt.Fprintf(w, "%-17s %s\n", "ID tokens", r.IDTokenAlg)
	}
	reasons := make([]string, 0, len(r.ErrorReasons))
	for k := range r.ErrorReasons {
		reasons = append(reasons, k)
	}
	slices.SortFunc(reasons, func(a, b string) int { return int(r.ErrorReasons[b] - r.ErrorReasons[a]) })
	for _, k := range reasons {
		fmt.Fprintf(w, "  %6d  %s\n", r.ErrorReasons[k], k)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tcount\tmean\tp50\tp95\tp99\tmax\t")
	for _, s := range r.Steps {
		name := s.Name
		switch name {
		case "outbox":
			name = "(outbox)"
		case "login":
			name = "login (4 steps)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t%.1fms\t\n", name, s.Count, s.Mean, s.P50, s.P95, s.P99, s.Max)
	}
	_ = tw.Flush()
	if !r.Pending {
		fmt.Fprintln(w, "\n(outbox) reads the code from the dev outbox: load on the server, but no step of a real login.")
	}
}
