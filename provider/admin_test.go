package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// adminRoutes is every admin API route, with a body where one is needed.
var adminRoutes = []struct {
	method, path string
	body         any
}{
	{http.MethodPost, "/admin/clients", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}}},
	{http.MethodGet, "/admin/clients", nil},
	{http.MethodGet, "/admin/clients/" + adminStaticID, nil},
	{http.MethodPut, "/admin/clients/" + adminStaticID, map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}}},
	{http.MethodDelete, "/admin/clients/" + adminStaticID, nil},
	{http.MethodPost, "/admin/clients/" + adminStaticID + "/secret", nil},
	{http.MethodGet, "/admin/keys", nil},
	{http.MethodPost, "/admin/keys/rotate", nil},
}

func TestAdminRefusesUnauthenticatedCalls(t *testing.T) {
	e := newAdminEnv(t)
	keysBefore, _ := e.Store.ListKeys(context.Background())
	for _, auth := range []struct{ name, header string }{
		{"no header", ""},
		{"empty bearer", "Bearer "},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminTestToken))},
		{"token without scheme", adminTestToken},
		{"wrong token", "Bearer not-the-admin-token"},
		{"token prefix", "Bearer " + adminTestToken[:len(adminTestToken)-1]},
		{"token with suffix", "Bearer " + adminTestToken + "x"},
		{"other case", "Bearer " + strings.ToUpper(adminTestToken)},
	} {
		for _, r := range adminRoutes {
			t.Run(auth.name+"/"+r.method+" "+r.path, func(t *testing.T) {
				status, body := e.callWith(auth.header, r.method, r.path, r.body)
				if status != http.StatusUnauthorized || body["error"] != "invalid_token" || body["error_description"] == "" {
					t.Errorf("status %d %v, want 401 invalid_token with a description", status, body)
				}
			})
		}
	}
	// Nothing changed: no client created, the static one intact, no rotation.
	list, _ := e.Store.ListClients(context.Background(), "", 10)
	if len(list) != 1 || list[0].ID != adminStaticID {
		t.Errorf("clients after refused calls: %+v", list)
	}
	if keysAfter, _ := e.Store.ListKeys(context.Background()); len(keysAfter) != len(keysBefore) {
		t.Errorf("keys changed: %d → %d", len(keysBefore), len(keysAfter))
	}
	// The scheme is case-insensitive (RFC 7235 §2.1).
	if status, _ := e.callWith("bearer "+adminTestToken, http.MethodGet, "/admin/keys", nil); status != http.StatusOK {
		t.Errorf("lower-case scheme: status %d, want 200", status)
	}
	if !strings.Contains(e.Log.String(), "refused a wrong admin token") {
		t.Error("a wrong token is not logged")
	}
	if strings.Contains(e.Log.String(), adminTestToken) {
		t.Error("the log contains the admin token")
	}
}

func TestAdminWithoutTokenRefusesEverything(t *testing.T) {
	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			e := newAdminEnv(t, func(o *Options) { o.AdminToken = ""; o.Dev = dev })
			for _, auth := range []string{"", "Bearer ", "Bearer anything", "Bearer " + adminTestToken} {
				for _, r := range adminRoutes {
					status, body := e.callWith(auth, r.method, r.path, r.body)
					if status != http.StatusForbidden || !strings.Contains(fmt.Sprint(body["error_description"]), "no admin token is configured") {
						t.Errorf("%q %s %s: status %d %v, want 403 saying no token is configured", auth, r.method, r.path, status, body)
					}
				}
			}
			// Health checks stay open on the admin listener.
			for _, path := range []string{"/healthz", "/readyz"} {
				resp, err := http.Get(e.Admin.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d, want 200", path, resp.StatusCode)
				}
			}
		})
	}
}

func TestAdminRoutesAreNotOnThePublicListener(t *testing.T) {
	e := newAdminEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.Public.URL+"/admin/clients", nil)
	req.Header.Set("Authorization", "Bearer "+adminTestToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public listener /admin/clients: status %d, want 404", resp.StatusCode)
	}
}

func TestAdminCreateClient(t *testing.T) {
	e := newAdminEnv(t)
	t.Run("confidential with defaults", func(t *testing.T) {
		before := e.Clock.Now().UTC().Truncate(time.Second)
		got := e.createClient(map[string]any{
			"client_name":   "Shop",
			"redirect_uris": []string{"https://shop.example.com/cb"},
		})
		id, _ := got["client_id"].(string)
		secret, _ := got["client_secret"].(string)
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		if err != nil || len(raw) != 32 {
			t.Errorf("client_secret %q: want 32 random bytes base64url (%v)", secret, err)
		}
		if len(id) < 16 {
			t.Errorf("generated client_id %q is too short to be unguessable", id)
		}
		want := map[string]any{
			"client_name":                  "Shop",
			"grant_types":                  []any{"authorization_code", "refresh_token"},
			"response_types":               []any{"code"},
			"scope":                        "openid phone offline_access",
			"token_endpoint_auth_method":   "client_secret_basic",
			"id_token_signed_response_alg": "RS256",
			"skip_consent":                 false,
			"static":                       false,
			"client_secret_expires_at":     float64(0),
		}
		for k, v := range want {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if iat, _ := got["client_id_issued_at"].(float64); int64(iat) < before.Unix() {
			t.Errorf("client_id_issued_at %v before the request (%d)", got["client_id_issued_at"], before.Unix())
		}
		// Only the keyed hash is stored.
		c := e.storedClient(id)
		if !bytes.Equal(c.SecretHash, e.P.HashClientSecret(secret)) {
			t.Error("the stored hash is not HashClientSecret(secret)")
		}
		stored, _ := json.Marshal(c)
		if bytes.Contains(stored, []byte(secret)) {
			t.Error("the store holds the secret in clear")
		}
		// GET never shows it again.
		again := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients/"+id, nil)
		if _, ok := again["client_secret"]; ok {
			t.Errorf("GET returns a client_secret: %v", again)
		}
	})
	t.Run("two creations get different secrets", func(t *testing.T) {
		a := e.createClient(map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}})
		b := e.createClient(map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}})
		if a["client_secret"] == b["client_secret"] || a["client_id"] == b["client_id"] {
			t.Error("two clients share an id or a secret")
		}
	})
	t.Run("public client gets no secret", func(t *testing.T) {
		got := e.createClient(map[string]any{
			"client_id":                  "spa",
			"redirect_uris":              []string{"http://localhost:3000/cb", "http://127.0.0.1:3000/cb", "http://[::1]:3000/cb"},
			"token_endpoint_auth_method": "none",
			"scope":                      "openid",
		})
		if _, ok := got["client_secret"]; ok {
			t.Errorf("a public client got a secret: %v", got)
		}
		if got["client_id"] != "spa" {
			t.Errorf("client_id = %v, want the chosen one", got["client_id"])
		}
		if c := e.storedClient("spa"); len(c.SecretHash) != 0 || !newFositeClient(c).IsPublic() {
			t.Errorf("stored public client: hash %x, public %v", c.SecretHash, newFositeClient(c).IsPublic())
		}
	})
	t.Run("every field", func(t *testing.T) {
		meta := map[string]any{
			"client_id":                    "full",
			"client_name":                  "Full",
			"redirect_uris":                []string{"https://full.example.com/cb"},
			"post_logout_redirect_uris":    []string{"https://full.example.com/bye"},
			"grant_types":                  []string{"authorization_code"},
			"response_types":               []string{"code"},
			"scope":                        "openid phone",
			"token_endpoint_auth_method":   "client_secret_post",
			"id_token_signed_response_alg": "ES256",
			"logo_uri":                     "https://full.example.com/logo.png",
			"skip_consent":                 true,
		}
		got := e.createClient(meta)
		for k, v := range meta {
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		c := e.storedClient("full")
		if c.SkipConsent != true || c.IDTokenSignedResponseAlg != "ES256" || c.LogoURI == "" || len(c.PostLogoutRedirectURIs) != 1 {
			t.Errorf("stored: %+v", c)
		}
	})
	t.Run("taken id", func(t *testing.T) {
		for _, id := range []string{"full", adminStaticID} {
			status, body := e.call(http.MethodPost, "/admin/clients", map[string]any{"client_id": id, "redirect_uris": []string{"https://x.example.com/cb"}})
			if status != http.StatusConflict || !strings.Contains(fmt.Sprint(body["error_description"]), "already registered") {
				t.Errorf("%s: status %d %v, want 409 already registered", id, status, body)
			}
		}
		if c := e.storedClient(adminStaticID); !c.Static || c.RedirectURIs[0] != "https://static.example.com/cb" {
			t.Errorf("the static client changed: %+v", c)
		}
	})
}

func TestAdminClientValidation(t *testing.T) {
	e := newAdminEnv(t)
	ok := func(extra map[string]any) map[string]any {
		m := map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		says   string // in error_description
	}{
		{"no redirect uri", map[string]any{"client_name": "x"}, 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"empty redirect list", ok(map[string]any{"redirect_uris": []string{}}), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"relative redirect", ok(map[string]any{"redirect_uris": []string{"/callback"}}), 400, "invalid_redirect_uri", "absolute URL"},
		{"redirect without host", ok(map[string]any{"redirect_uris": []string{"https:///cb"}}), 400, "invalid_redirect_uri", "absolute URL"},
		{"redirect with fragment", ok(map[string]any{"redirect_uris": []string{"https://app.example.com/cb#x"}}), 400, "invalid_redirect_uri", "fragment"},
		{"redirect with empty fragment", ok(map[string]any{"redirect_uris": []string{"https://app.example.com/cb#"}}), 400, "invalid_redirect_uri", "fragment"},
		{"plain http", ok(map[string]any{"redirect_uris": []string{"http://app.example.com/cb"}}), 400, "invalid_redirect_uri", "must use https"},
		{"http on a lookalike host", ok(map[string]any{"redirect_uris": []string{"http://localhost.evil.com/cb"}}), 400, "invalid_redirect_uri", "must use https"},
		{"custom scheme", ok(map[string]any{"redirect_uris": []string{"com.example.app:/cb"}}), 400, "invalid_redirect_uri", ""},
		{"javascript", ok(map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}), 400, "invalid_redirect_uri", ""},
		{"user info", ok(map[string]any{"redirect_uris": []string{"https://user:pw@app.example.com/cb"}}), 400, "invalid_redirect_uri", "user name or password"},
		{"second redirect bad", ok(map[string]any{"redirect_uris": []string{"https://app.example.com/cb", "http://evil.example.com/cb"}}), 400, "invalid_redirect_uri", "redirect_uris[1]"},
		{"post logout http", ok(map[string]any{"post_logout_redirect_uris": []string{"http://app.example.com/bye"}}), 400, "invalid_client_metadata", "post_logout_redirect_uris[0]"},
		{"logo http", ok(map[string]any{"logo_uri": "http://app.example.com/logo.png"}), 400, "invalid_client_metadata", "logo_uri"},
		{"implicit grant", ok(map[string]any{"grant_types": []string{"authorization_code", "implicit"}}), 400, "invalid_client_metadata", "grant_types[1]"},
		{"password grant", ok(map[string]any{"grant_types": []string{"password"}}), 400, "invalid_client_metadata", "grant_types[0]"},
		{"client credentials", ok(map[string]any{"grant_types": []string{"client_credentials"}}), 400, "invalid_client_metadata", "grant_types[0]"},
		{"refresh only", ok(map[string]any{"grant_types": []string{"refresh_token"}}), 400, "invalid_client_metadata", "must contain \"authorization_code\""},
		{"token response", ok(map[string]any{"response_types": []string{"token"}}), 400, "invalid_client_metadata", "response_types[0]"},
		{"hybrid response", ok(map[string]any{"response_types": []string{"code id_token"}}), 400, "invalid_client_metadata", "response_types[0]"},
		{"scope without openid", ok(map[string]any{"scope": "phone"}), 400, "invalid_client_metadata", "must contain \"openid\""},
		{"unknown scope", ok(map[string]any{"scope": "openid email"}), 400, "invalid_client_metadata", "\"email\" is not supported"},
		{"private_key_jwt", ok(map[string]any{"token_endpoint_auth_method": "private_key_jwt"}), 400, "invalid_client_metadata", "token_endpoint_auth_method"},
		{"client_secret_jwt", ok(map[string]any{"token_endpoint_auth_method": "client_secret_jwt"}), 400, "invalid_client_metadata", "token_endpoint_auth_method"},
		{"HS256", ok(map[string]any{"id_token_signed_response_alg": "HS256"}), 400, "invalid_client_metadata", "id_token_signed_response_alg"},
		{"alg none", ok(map[string]any{"id_token_signed_response_alg": "none"}), 400, "invalid_client_metadata", "id_token_signed_response_alg"},
		{"chosen secret", ok(map[string]any{"client_secret": "0123456789abcdef0123456789abcdef"}), 400, "invalid_client_metadata", "client_secret cannot be chosen"},
		{"public with a secret", ok(map[string]any{"token_endpoint_auth_method": "none", "client_secret": "0123456789abcdef0123456789abcdef"}), 400, "invalid_client_metadata", "client_secret"},
		{"jwks", ok(map[string]any{"jwks": map[string]any{"keys": []any{}}}), 400, "invalid_client_metadata", "jwks is not supported"},
		{"bad client id", ok(map[string]any{"client_id": "has space"}), 400, "invalid_client_metadata", "client_id"},
		{"long client id", ok(map[string]any{"client_id": strings.Repeat("a", 129)}), 400, "invalid_client_metadata", "client_id"},
		{"long name", ok(map[string]any{"client_name": strings.Repeat("n", 201)}), 400, "invalid_client_metadata", "client_name"},
		{"name with control character", ok(map[string]any{"client_name": "a\nb"}), 400, "invalid_client_metadata", "client_name"},
		{"unknown field (typo)", map[string]any{"redirect_uri": "https://app.example.com/cb"}, 400, "invalid_client_metadata", "unknown field \"redirect_uri\""},
		{"string for a list", map[string]any{"redirect_uris": "https://app.example.com/cb"}, 400, "invalid_client_metadata", "redirect_uris must be a JSON array"},
		{"number for a bool", ok(map[string]any{"skip_consent": 1}), 400, "invalid_client_metadata", "skip_consent"},
		{"not JSON", "redirect_uris=https://app.example.com/cb", 400, "invalid_client_metadata", "not valid"},
		{"two objects", `{"redirect_uris":["https://app.example.com/cb"]} {}`, 400, "invalid_client_metadata", "after the JSON object"},
		{"empty body", "", 400, "invalid_client_metadata", "JSON object"},
		{"too large", ok(map[string]any{"client_name": strings.Repeat("n", 70<<10)}), 413, "invalid_client_metadata", "larger than"},
		{"every problem at once", map[string]any{"redirect_uris": []string{"http://a.example.com/cb"}, "scope": "phone", "grant_types": []string{"implicit"}}, 400, "invalid_redirect_uri", "; "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.Store.ListClients(context.Background(), "", 100)
			status, body := e.call(http.MethodPost, "/admin/clients", tc.body)
			desc := fmt.Sprint(body["error_description"])
			if status != tc.status || body["error"] != tc.code || !strings.Contains(desc, tc.says) {
				t.Errorf("status %d %v, want %d %s saying %q", status, body, tc.status, tc.code, tc.says)
			}
			after, _ := e.Store.ListClients(context.Background(), "", 100)
			if len(after) != len(before) {
				t.Errorf("a refused client was stored")
			}
		})
	}
	// The same rules apply to PUT.
	id, _ := e.createClient(ok(nil))["client_id"].(string)
	for _, tc := range cases {
		if tc.name == "bad client id" || tc.name == "long client id" {
			continue // the id comes from the URL
		}
		t.Run("PUT "+tc.name, func(t *testing.T) {
			status, body := e.call(http.MethodPut, "/admin/clients/"+id, tc.body)
			if status != tc.status || body["error"] != tc.code {
				t.Errorf("status %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if got := e.storedClient(id).RedirectURIs; !slices.Equal(got, []string{"https://app.example.com/cb"}) {
				t.Errorf("a refused PUT changed the client: %v", got)
			}
		})
	}
}

func TestAdminListClientsPages(t *testing.T) {
	e := newAdminEnv(t)
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("app-%02d", i)
		e.createClient(map[string]any{"client_id": id, "redirect_uris": []string{"https://a.example.com/cb"}})
		want = append(want, id)
	}
	want = append(want, adminStaticID) // ids sort: app-00 … app-06, static-app

	var got []string
	after, pages := "", 0
	for {
		q := url.Values{"limit": {"3"}}
		if after != "" {
			q.Set("after", after)
		}
		page := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients?"+q.Encode(), nil)
		pages++
		items, _ := page["clients"].([]any)
		if len(items) > 3 {
			t.Fatalf("page of %d clients with limit=3", len(items))
		}
		for _, it := range items {
			c := it.(map[string]any)
			got = append(got, c["client_id"].(string))
			if _, ok := c["client_secret"]; ok {
				t.Errorf("list shows a secret for %v", c["client_id"])
			}
			if c["client_id"] == adminStaticID && c["static"] != true {
				t.Errorf("static client listed with static=%v", c["static"])
			}
		}
		next, _ := page["next"].(string)
		if next == "" {
			break
		}
		after = next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paged ids %v in %d pages, want %v in 3", got, pages, want)
	}

	// Default page: everything fits, no cursor.
	page := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients", nil)
	if n := len(page["clients"].([]any)); n != len(want) || page["next"] != nil {
		t.Errorf("default page: %d clients, next %v", n, page["next"])
	}
	// An exact fit has no next page either.
	page = e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients?limit=8", nil)
	if page["next"] != nil {
		t.Errorf("limit=8 of 8: next = %v, want none", page["next"])
	}
	// Past the end: empty list, not null.
	page = e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients?after=zzz", nil)
	if items, ok := page["clients"].([]any); !ok || len(items) != 0 {
		t.Errorf("after the last id: %v, want []", page["clients"])
	}
	for _, bad := range []string{"0", "-1", "201", "ten"} {
		status, body := e.call(http.MethodGet, "/admin/clients?limit="+bad, nil)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("limit=%s: status %d %v, want 400 invalid_request", bad, status, body)
		}
	}
}

func TestAdminGetUpdateDeleteClient(t *testing.T) {
	e := newAdminEnv(t)
	created := e.createClient(map[string]any{"client_id": "web", "client_name": "Web", "redirect_uris": []string{"https://web.example.com/cb"}})
	secret := created["client_secret"].(string)
	hash := e.storedClient("web").SecretHash

	got := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients/web", nil)
	if got["client_name"] != "Web" || got["static"] != false {
		t.Errorf("GET: %v", got)
	}
	for _, id := range []string{"nope", "web%2Fx"} {
		status, body := e.call(http.MethodGet, "/admin/clients/"+id, nil)
		if status != http.StatusNotFound || body["error"] != "not_found" {
			t.Errorf("GET %s: status %d %v, want 404 not_found", id, status, body)
		}
	}

	t.Run("PUT replaces the metadata and keeps id, secret and created_at", func(t *testing.T) {
		e.Clock.Advance(time.Minute)
		put := e.mustCall(http.StatusOK, http.MethodPut, "/admin/clients/web", map[string]any{
			"client_name":   "Web 2",
			"redirect_uris": []string{"https://web.example.com/cb2"},
			"scope":         "openid",
			"skip_consent":  true,
		})
		if put["client_name"] != "Web 2" || put["scope"] != "openid" || put["skip_consent"] != true || put["created_at"] != got["created_at"] || put["updated_at"] == got["updated_at"] {
			t.Errorf("PUT answer: %v", put)
		}
		if _, ok := put["client_secret"]; ok {
			t.Error("PUT of a confidential client returned a secret")
		}
		c := e.storedClient("web")
		if !bytes.Equal(c.SecretHash, hash) || !bytes.Equal(c.SecretHash, e.P.HashClientSecret(secret)) {
			t.Error("PUT changed the secret")
		}
		if !slices.Equal(c.RedirectURIs, []string{"https://web.example.com/cb2"}) || c.Name != "Web 2" {
			t.Errorf("stored after PUT: %+v", c)
		}
	})
	t.Run("a GET body can be PUT back unchanged", func(t *testing.T) {
		body := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients/web", nil)
		put := e.mustCall(http.StatusOK, http.MethodPut, "/admin/clients/web", body)
		for _, k := range []string{"client_name", "redirect_uris", "scope", "skip_consent", "grant_types", "token_endpoint_auth_method"} {
			if fmt.Sprint(put[k]) != fmt.Sprint(body[k]) {
				t.Errorf("%s: %v → %v", k, body[k], put[k])
			}
		}
	})
	t.Run("PUT cannot change the id", func(t *testing.T) {
		status, body := e.call(http.MethodPut, "/admin/clients/web", map[string]any{"client_id": "other", "redirect_uris": []string{"https://web.example.com/cb"}})
		if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error_description"]), "cannot change") {
			t.Errorf("status %d %v", status, body)
		}
	})
	t.Run("PUT to public drops the secret; back to confidential issues a new one", func(t *testing.T) {
		pub := e.mustCall(http.StatusOK, http.MethodPut, "/admin/clients/web", map[string]any{
			"redirect_uris": []string{"https://web.example.com/cb"}, "token_endpoint_auth_method": "none",
		})
		if _, ok := pub["client_secret"]; ok || len(e.storedClient("web").SecretHash) != 0 {
			t.Error("a public client kept or got a secret")
		}
		conf := e.mustCall(http.StatusOK, http.MethodPut, "/admin/clients/web", map[string]any{
			"redirect_uris": []string{"https://web.example.com/cb"}, "token_endpoint_auth_method": "client_secret_post",
		})
		s, _ := conf["client_secret"].(string)
		if len(s) != 43 || s == secret || !bytes.Equal(e.storedClient("web").SecretHash, e.P.HashClientSecret(s)) {
			t.Errorf("confidential again: secret %q", s)
		}
	})
	t.Run("PUT unknown client", func(t *testing.T) {
		status, _ := e.call(http.MethodPut, "/admin/clients/nope", map[string]any{"redirect_uris": []string{"https://a.example.com/cb"}})
		if status != http.StatusNotFound {
			t.Errorf("status %d, want 404", status)
		}
		if _, err := e.Store.GetClient(context.Background(), "nope"); err == nil {
			t.Error("PUT created a client")
		}
	})
	t.Run("DELETE", func(t *testing.T) {
		status, body := e.call(http.MethodDelete, "/admin/clients/web", nil)
		if status != http.StatusNoContent || body != nil {
			t.Fatalf("DELETE: status %d %v, want 204 and no body", status, body)
		}
		if status, _ := e.call(http.MethodGet, "/admin/clients/web", nil); status != http.StatusNotFound {
			t.Errorf("GET after DELETE: %d, want 404", status)
		}
		if status, _ := e.call(http.MethodDelete, "/admin/clients/web", nil); status != http.StatusNotFound {
			t.Errorf("second DELETE: %d, want 404", status)
		}
	})
}

func TestAdminStaticClientsAreReadOnly(t *testing.T) {
	e := newAdminEnv(t)
	before := e.storedClient(adminStaticID)
	got := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients/"+adminStaticID, nil)
	if got["static"] != true || got["client_name"] != "Static app" {
		t.Errorf("GET static: %v", got)
	}
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPut, "/admin/clients/" + adminStaticID, map[string]any{"redirect_uris": []string{"https://evil.example.com/cb"}}},
		{http.MethodPut, "/admin/clients/" + adminStaticID, got},
		{http.MethodDelete, "/admin/clients/" + adminStaticID, nil},
		{http.MethodPost, "/admin/clients/" + adminStaticID + "/secret", nil},
	} {
		status, body := e.call(r.method, r.path, r.body)
		if status != http.StatusConflict || body["error"] != "static_client" || !strings.Contains(fmt.Sprint(body["error_description"]), "configuration file") {
			t.Errorf("%s %s: status %d %v, want 409 static_client naming the configuration file", r.method, r.path, status, body)
		}
	}
	after := e.storedClient(adminStaticID)
	if !after.Static || !slices.Equal(after.RedirectURIs, before.RedirectURIs) || !bytes.Equal(after.SecretHash, before.SecretHash) {
		t.Errorf("the static client changed: %+v", after)
	}
	if !bytes.Equal(after.SecretHash, e.P.HashClientSecret(adminStaticPass)) {
		t.Error("the static client's secret no longer matches the configuration")
	}
}

func TestAdminRotateClientSecret(t *testing.T) {
	e := newAdminEnv(t)
	created := e.createClient(map[string]any{"client_id": "api", "redirect_uris": []string{"https://api.example.com/cb"}})
	old := created["client_secret"].(string)

	got := e.mustCall(http.StatusOK, http.MethodPost, "/admin/clients/api/secret", nil)
	s, _ := got["client_secret"].(string)
	if raw, err := base64.RawURLEncoding.DecodeString(s); err != nil || len(raw) != 32 || s == old {
		t.Fatalf("rotated secret %q (old %q)", s, old)
	}
	if got["client_id"] != "api" || got["client_secret_expires_at"] != float64(0) {
		t.Errorf("rotation answer: %v", got)
	}
	h := e.storedClient("api").SecretHash
	if !bytes.Equal(h, e.P.HashClientSecret(s)) || bytes.Equal(h, e.P.HashClientSecret(old)) {
		t.Error("the store does not hold the new secret's hash only")
	}

	e.createClient(map[string]any{"client_id": "pub", "redirect_uris": []string{"https://pub.example.com/cb"}, "token_endpoint_auth_method": "none"})
	status, body := e.call(http.MethodPost, "/admin/clients/pub/secret", nil)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["error_description"]), "public") {
		t.Errorf("rotate a public client: status %d %v, want 400 naming it public", status, body)
	}
	if len(e.storedClient("pub").SecretHash) != 0 {
		t.Error("a public client got a secret")
	}
	if status, _ := e.call(http.MethodPost, "/admin/clients/nope/secret", nil); status != http.StatusNotFound {
		t.Errorf("rotate unknown: status %d, want 404", status)
	}
}

func TestAdminAuditEvents(t *testing.T) {
	e := newAdminEnv(t)
	created := e.createClient(map[string]any{"client_id": "aud", "client_name": "Audited", "redirect_uris": []string{"https://aud.example.com/cb"}})
	e.mustCall(http.StatusOK, http.MethodPut, "/admin/clients/aud", map[string]any{"client_name": "Audited 2", "redirect_uris": []string{"https://aud.example.com/cb"}})
	rotated := e.mustCall(http.StatusOK, http.MethodPost, "/admin/clients/aud/secret", nil)
	e.mustCall(http.StatusNoContent, http.MethodDelete, "/admin/clients/aud", nil)
	e.mustCall(http.StatusOK, http.MethodPost, "/admin/keys/rotate?alg=ES256", nil)
	// Reads and refusals are not changes.
	e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients", nil)
	e.call(http.MethodPost, "/admin/clients", map[string]any{"redirect_uris": []string{"http://x.example.com"}})

	events := e.Log.events(t)
	var names []string
	for _, ev := range events {
		names = append(names, ev["event"].(string))
		if ev["actor"] != adminActor(adminTestToken) {
			t.Errorf("%v: actor %v, want %s", ev["event"], ev["actor"], adminActor(adminTestToken))
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["at"])); err != nil {
			t.Errorf("%v: at %v is not a time", ev["event"], ev["at"])
		}
	}
	want := []string{eventClientCreated, eventClientUpdated, eventClientSecretRotated, eventClientDeleted, eventKeysRotated}
	if !slices.Equal(names, want) {
		t.Fatalf("audit events %v, want %v", names, want)
	}
	if events[0]["client_id"] != "aud" || events[0]["client_name"] != "Audited" {
		t.Errorf("created event: %v", events[0])
	}
	if fmt.Sprint(events[1]["changed"]) != "[client_name]" {
		t.Errorf("updated event names %v as changed, want [client_name]", events[1]["changed"])
	}
	if events[4]["alg"] != "ES256" || events[4]["kid"] == "" {
		t.Errorf("keys event: %v", events[4])
	}
	if !strings.HasPrefix(adminActor(adminTestToken), "admin-token:") || strings.Contains(adminActor(adminTestToken), adminTestToken[:12]) {
		t.Errorf("actor %q must name the token by a digest", adminActor(adminTestToken))
	}
	logs := e.Log.String()
	for name, secret := range map[string]string{
		"the admin token":       adminTestToken,
		"a created secret":      created["client_secret"].(string),
		"a rotated secret":      rotated["client_secret"].(string),
		"a created secret hash": base64.StdEncoding.EncodeToString(e.P.HashClientSecret(created["client_secret"].(string))),
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %s", name)
		}
	}
}
