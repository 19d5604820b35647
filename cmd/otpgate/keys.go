package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/provider/keys"
)

// keysCommand is `otpgate keys …`: signing keys through the admin API.
func keysCommand() *cobra.Command { return newKeysCommand(os.Getenv) }

// newKeysCommand is keysCommand reading the environment through getenv.
func newKeysCommand(getenv func(string) string) *cobra.Command {
	af := adminFlags{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List and rotate the token signing keys through the admin API",
		Long: "List and rotate the keys that sign ID tokens, through the admin API of a running otpgate\n" +
			"(--admin-url or $" + envAdminURL + ", token in $" + envAdminToken + ").\n\n" +
			"A rotation makes a new key current at once; the previous key stays in the JWKS, verifying\n" +
			"the tokens it signed, until every one of them has expired.",
	}
	af.register(cmd)
	cmd.AddCommand(keysListCommand(&af), keysRotateCommand(&af))
	return cmd
}

// printKeyTable shows keys as the admin API lists them (keys.Info: never any
// private material, which the API does not serve).
func printKeyTable(out io.Writer, list []keys.Info) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNING\tCREATED_AT\tEXPIRES_AT")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, yesNo(k.Signing), rfc3339(k.CreatedAt), orDash(rfc3339(k.ExpiresAt)))
	}
	return tw.Flush()
}

func keysListCommand(af *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the published signing keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodGet, "/admin/keys", nil)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, func(out, _ io.Writer, raw json.RawMessage) error {
				var list struct {
					Keys []keys.Info `json:"keys"`
				}
				if err := json.Unmarshal(raw, &list); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %w", err)
				}
				return printKeyTable(out, list.Keys)
			})
		},
	}
}

func keysRotateCommand(af *adminFlags) *cobra.Command {
	var alg string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make new signing keys current (RS256 and ES256, or --alg)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			path := "/admin/keys/rotate"
			if alg != "" {
				path += "?alg=" + url.QueryEscape(alg)
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, path, nil)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, func(out, _ io.Writer, raw json.RawMessage) error {
				var res struct {
					Rotated []struct {
						Algorithm string   `json:"alg"`
						ID        string   `json:"kid"`
						Retired   []string `json:"retired"`
					} `json:"rotated"`
					RetiredUntil time.Time   `json:"retired_until"`
					Keys         []keys.Info `json:"keys"`
				}
				if err := json.Unmarshal(raw, &res); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %w", err)
				}
				for _, r := range res.Rotated {
					retired := "none"
					if len(r.Retired) > 0 {
						retired = strings.Join(r.Retired, ", ")
					}
					fmt.Fprintf(out, "%s: new signing key %s; retired %s\n", r.Algorithm, r.ID, retired)
				}
				fmt.Fprintf(out, "Retired keys stay in the JWKS until %s, when every token they signed has expired.\n\n", rfc3339(res.RetiredUntil))
				return printKeyTable(out, res.Keys)
			})
		},
	}
	cmd.Flags().StringVar(&alg, "alg", "", "rotate only this algorithm: RS256 or ES256 (default both)")
	return cmd
}
