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
	"github.com/spf13/pflag"

	"github.com/otpgate/otpgate/provider"
)

// clientsCommand is `otpgate clients …`: OAuth clients through the admin API.
func clientsCommand() *cobra.Command { return newClientsCommand(os.Getenv) }

// newClientsCommand is clientsCommand reading the environment through getenv.
func newClientsCommand(getenv func(string) string) *cobra.Command {
	af := adminFlags{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage OAuth clients through the admin API",
		Long: "Manage the relying parties (OAuth clients) of a running otpgate through its admin API.\n\n" +
			"The API is found at --admin-url or $" + envAdminURL + " (default " + defaultAdminURL + ") and\n" +
			"authenticated with $" + envAdminToken + " (or --admin-token, --admin-token-file). Clients from the\n" +
			"configuration file are listed with static=yes and cannot be changed here.",
	}
	af.register(cmd)
	cmd.AddCommand(
		clientsCreateCommand(&af),
		clientsListCommand(&af),
		clientsGetCommand(&af),
		clientsUpdateCommand(&af),
		clientsDeleteCommand(&af),
		clientsRotateSecretCommand(&af),
	)
	return cmd
}

// clientFlags set client metadata (RFC 7591 names in the API).
type clientFlags struct {
	fromFile      string
	clientID      string
	name          string
	redirectURIs  []string
	postLogout    []string
	grantTypes    []string
	responseTypes []string
	scope         string
	authMethod    string
	alg           string
	logoURI       string
	skipConsent   bool
}

// metadataFlags maps each flag to its API field.
var metadataFlags = map[string]string{
	"client-id":                "client_id",
	"name":                     "client_name",
	"redirect-uri":             "redirect_uris",
	"post-logout-redirect-uri": "post_logout_redirect_uris",
	"grant-type":               "grant_types",
	"response-type":            "response_types",
	"scope":                    "scope",
	"auth-method":              "token_endpoint_auth_method",
	"id-token-alg":             "id_token_signed_response_alg",
	"logo-uri":                 "logo_uri",
	"skip-consent":             "skip_consent",
}

func (f *clientFlags) register(fs *pflag.FlagSet, create bool) {
	fs.StringVarP(&f.fromFile, "from-file", "f", "", "read the client metadata (JSON, RFC 7591 names) from a file, - for standard input; flags override it")
	if create {
		fs.StringVar(&f.clientID, "client-id", "", "client id (default: generated)")
	}
	fs.StringVar(&f.name, "name", "", "client name shown on the consent page")
	fs.StringArrayVar(&f.redirectURIs, "redirect-uri", nil, "redirect URI, matched exactly (repeat for several); https unless localhost/127.0.0.1/[::1]")
	fs.StringArrayVar(&f.postLogout, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeat for several)")
	fs.StringArrayVar(&f.grantTypes, "grant-type", nil, "authorization_code, refresh_token (repeat; default both)")
	fs.StringArrayVar(&f.responseTypes, "response-type", nil, "code (the default and only value)")
	fs.StringVar(&f.scope, "scope", "", "space-separated scopes, must contain openid (default \"openid phone offline_access\")")
	fs.StringVar(&f.authMethod, "auth-method", "", "token endpoint auth: client_secret_basic (default), client_secret_post, or none for a public PKCE client")
	fs.StringVar(&f.alg, "id-token-alg", "", "ID token signing algorithm: RS256 (default) or ES256")
	fs.StringVar(&f.logoURI, "logo-uri", "", "https URL of a logo")
	fs.BoolVar(&f.skipConsent, "skip-consent", false, "skip the consent page (first-party clients); --skip-consent=false turns it back on")
}

// metadata returns base (or the --from-file object) with every flag the user
// set applied on top.
func (f *clientFlags) metadata(cmd *cobra.Command, base map[string]any) (map[string]any, error) {
	meta := base
	if f.fromFile != "" {
		var r io.Reader = cmd.InOrStdin()
		if f.fromFile != "-" {
			file, err := os.Open(f.fromFile)
			if err != nil {
				return nil, err
			}
			defer file.Close()
			r = file
		}
		meta = map[string]any{}
		if err := json.NewDecoder(r).Decode(&meta); err != nil {
			return nil, fmt.Errorf("--from-file %s: not a JSON object of client metadata: %w", f.fromFile, err)
		}
	}
	if meta == nil {
		meta = map[string]any{}
	}
	values := map[string]any{
		"client-id": f.clientID, "name": f.name, "redirect-uri": f.redirectURIs,
		"post-logout-redirect-uri": f.postLogout, "grant-type": f.grantTypes, "response-type": f.responseTypes,
		"scope": f.scope, "auth-method": f.authMethod, "id-token-alg": f.alg, "logo-uri": f.logoURI,
		"skip-consent": f.skipConsent,
	}
	for flag, field := range metadataFlags {
		if fl := cmd.Flags().Lookup(flag); fl != nil && fl.Changed {
			meta[field] = values[flag]
		}
	}
	return meta, nil
}

// printClient writes one client as aligned "field  value" lines, and a
// reminder on errOut when the answer carries a secret.
func printClient(out, errOut io.Writer, raw json.RawMessage) error {
	var c provider.ClientView
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("client_id", c.ClientID)
	row("client_secret", c.ClientSecret)
	row("client_name", c.ClientName)
	row("redirect_uris", strings.Join(c.RedirectURIs, ", "))
	row("post_logout_redirect_uris", strings.Join(c.PostLogoutRedirectURIs, ", "))
	row("grant_types", strings.Join(c.GrantTypes, ", "))
	row("response_types", strings.Join(c.ResponseTypes, ", "))
	row("scope", c.Scope)
	row("token_endpoint_auth_method", c.TokenEndpointAuthMethod)
	row("id_token_signed_response_alg", c.IDTokenSignedResponseAlg)
	row("logo_uri", c.LogoURI)
	row("skip_consent", yesNo(c.SkipConsent))
	row("static", yesNo(c.Static))
	row("created_at", rfc3339(c.CreatedAt))
	row("updated_at", rfc3339(c.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.ClientSecret != "" {
		fmt.Fprintln(errOut, "Store the client secret now: otpgate keeps only a hash of it and cannot show it again.")
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// printAnswer prints an answer: as JSON with --json, otherwise with human.
func printAnswer(cmd *cobra.Command, af *adminFlags, raw json.RawMessage, human func(io.Writer, io.Writer, json.RawMessage) error) error {
	if af.json {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	return human(cmd.OutOrStdout(), cmd.ErrOrStderr(), raw)
}

func clientPath(id string) string { return "/admin/clients/" + url.PathEscape(id) }

func clientsCreateCommand(af *adminFlags) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its secret once",
		Example: "  otpgate clients create --name Shop --redirect-uri https://shop.example.com/oidc/callback\n" +
			"  otpgate clients create --name SPA --auth-method none --redirect-uri http://localhost:3000/cb --skip-consent\n" +
			"  otpgate clients create -f shop.json --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			meta, err := f.metadata(cmd, nil)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, "/admin/clients", meta)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, printClient)
		},
	}
	f.register(cmd.Flags(), true)
	return cmd
}

func clientsListCommand(af *adminFlags) *cobra.Command {
	var (
		limit int
		after string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients (every page, or one with --limit/--after)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			onePage := cmd.Flags().Changed("limit") || cmd.Flags().Changed("after")
			var all struct {
				Clients []json.RawMessage `json:"clients"`
				Next    string            `json:"next,omitempty"`
			}
			all.Clients = []json.RawMessage{}
			cursor := after
			for {
				q := url.Values{"limit": {fmt.Sprint(limit)}}
				if cursor != "" {
					q.Set("after", cursor)
				}
				raw, err := c.do(cmd.Context(), http.MethodGet, "/admin/clients?"+q.Encode(), nil)
				if err != nil {
					return err
				}
				var page struct {
					Clients []json.RawMessage `json:"clients"`
					Next    string            `json:"next"`
				}
				if err := json.Unmarshal(raw, &page); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %w", err)
				}
				all.Clients = append(all.Clients, page.Clients...)
				if onePage {
					all.Next = page.Next
				}
				if onePage || page.Next == "" || page.Next == cursor {
					break
				}
				cursor = page.Next
			}
			raw, err := json.Marshal(all)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, printClientTable)
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "clients per request (1 to 200); with --limit or --after only one page is shown")
	cmd.Flags().StringVar(&after, "after", "", "start after this client id (the previous page's next)")
	return cmd
}

// printClientTable writes a page of clients as a table.
func printClientTable(out, _ io.Writer, raw json.RawMessage) error {
	var page struct {
		Clients []provider.ClientView `json:"clients"`
		Next    string                `json:"next"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return fmt.Errorf("unexpected answer from the admin API: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH_METHOD\tSCOPE\tREDIRECT_URIS\tSTATIC")
	for _, c := range page.Clients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ClientID, orDash(c.ClientName), c.TokenEndpointAuthMethod,
			c.Scope, strings.Join(c.RedirectURIs, ","), yesNo(c.Static))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(out, "More clients: --after %s\n", page.Next)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clientsGetCommand(af *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLIENT_ID",
		Short: "Show a client",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodGet, clientPath(args[0]), nil)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, printClient)
		},
	}
}

func clientsUpdateCommand(af *adminFlags) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Change a client: the flags given replace those fields, the rest is kept",
		Long: "Change a client. The flags given replace those fields (a repeated flag such as --redirect-uri\n" +
			"replaces the whole list); fields not given keep their value. With --from-file the file\n" +
			"replaces the whole metadata, as PUT /admin/clients/{id} does. The secret is kept, except\n" +
			"that a client made public loses it and a public client made confidential gets a new one,\n" +
			"printed once.",
		Example: "  otpgate clients update shop --redirect-uri https://shop.example.com/cb --redirect-uri https://shop.example.com/cb2\n" +
			"  otpgate clients update shop --skip-consent=false",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			var base map[string]any
			if f.fromFile == "" {
				raw, err := c.do(cmd.Context(), http.MethodGet, clientPath(args[0]), nil)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(raw, &base); err != nil {
					return fmt.Errorf("unexpected answer from the admin API: %w", err)
				}
			}
			meta, err := f.metadata(cmd, base)
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPut, clientPath(args[0]), meta)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, printClient)
		},
	}
	f.register(cmd.Flags(), false)
	return cmd
}

func clientsDeleteCommand(af *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client; its tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			if _, err := c.do(cmd.Context(), http.MethodDelete, clientPath(args[0]), nil); err != nil {
				return err
			}
			if af.json {
				return printJSON(cmd.OutOrStdout(), json.RawMessage(fmt.Sprintf(`{"deleted":%q}`, args[0])))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleted client %s.\n", args[0])
			return nil
		},
	}
}

func clientsRotateSecretCommand(af *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret CLIENT_ID",
		Short: "Replace a client's secret at once; prints the new one once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := af.client()
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), http.MethodPost, clientPath(args[0])+"/secret", nil)
			if err != nil {
				return err
			}
			return printAnswer(cmd, af, raw, printClient)
		},
	}
}
