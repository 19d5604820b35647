package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/otpgate/otpgate/storage"
)

// countingStore counts the store's GetClient calls, per request: the key is
// the request's clientMemo (nil outside the public listener's requests).
type countingStore struct {
	storage.Store
	mu    sync.Mutex
	reads map[*clientMemo]map[string]int // memo → client id → reads
	order []*clientMemo                  // requests in the order they first read
}

func (s *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	memo, _ := ctx.Value(clientMemoKey{}).(*clientMemo)
	s.mu.Lock()
	if s.reads == nil {
		s.reads = map[*clientMemo]map[string]int{}
	}
	if s.reads[memo] == nil {
		s.reads[memo] = map[string]int{}
		s.order = append(s.order, memo)
	}
	s.reads[memo][id]++
	s.mu.Unlock()
	return s.Store.GetClient(ctx, id)
}

// take returns the reads of client id per request since the last call, in
// request order, and forgets them.
func (s *countingStore) take(id string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, m := range s.order {
		if n := s.reads[m][id]; n > 0 {
			out = append(out, n)
		}
	}
	s.reads, s.order = nil, nil
	return out
}

func sum(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}

// TestDynamicClientReadOncePerRequest counts the store reads of a client
// registered through the admin API during one login. fosite resolves the
// client about five times at the token endpoint; the request's memo leaves
// one store read per request that needs the client.
func TestDynamicClientReadOncePerRequest(t *testing.T) {
	var counter *countingStore
	e := newAdminEnv(t, func(o *Options) {
		counter = &countingStore{Store: o.Store}
		o.Store = counter
	})
	client := e.createClient(map[string]any{"redirect_uris": []string{adminRedirect}, "skip_consent": true, "scope": "openid phone offline_access"})
	id := client["client_id"].(string)
	rp := e.newRP(client)
	counter.take(id)

	code, verifier := rp.authorize(adminPhone())
	pages := counter.take(id)
	tok, err := rp.conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token exchange: %v", err)
	}
	token := counter.take(id)
	if _, err := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	refresh := counter.take(id)
	t.Logf("store reads of a dynamic client per request: login pages %v (%d in all), token %v, refresh %v", pages, sum(pages), token, refresh)

	for name, reads := range map[string][]int{"login pages": pages, "token": token, "refresh": refresh} {
		for _, n := range reads {
			if n > 1 {
				t.Errorf("%s: a request read the client %d times from the store, want at most once (%v)", name, n, reads)
			}
		}
	}
	if !slices.Equal(token, []int{1}) || !slices.Equal(refresh, []int{1}) {
		t.Errorf("token endpoint read the client %v (exchange) and %v (refresh) times, want once each", token, refresh)
	}

	// Nothing outlives a request: the next one reads the store again, so a
	// deletion holds at once (see also TestAdminCreatedClientsLogIn).
	e.mustCall(http.StatusNoContent, http.MethodDelete, "/admin/clients/"+id, nil)
	if _, err := rp.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("the deleted client's refresh token still works")
	}
}

// TestStaticClientsWithoutTheStore removes a static client from the store, as
// a Redis restarted without persistence does: the provider still serves it
// from its configuration, the admin API still shows it (once) and still
// refuses to create, change or delete a client of that id.
func TestStaticClientsWithoutTheStore(t *testing.T) {
	const loginID, loginSecret = "static-login", "static-login-secret-0123456789abcdef0123456789"
	var counter *countingStore
	e := newAdminEnv(t, func(o *Options) {
		counter = &countingStore{Store: o.Store}
		o.Store = counter
		o.StaticClients = append(o.StaticClients, StaticClient{
			Client: storage.Client{ID: loginID, Name: "Static login", RedirectURIs: []string{adminRedirect},
				Scopes: []string{"openid", "phone"}, SkipConsent: true},
			Secret: loginSecret,
		})
	})
	listed := func() []string {
		t.Helper()
		page := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients", nil)
		var ids []string
		for _, it := range page["clients"].([]any) {
			c := it.(map[string]any)
			if c["static"] == true {
				ids = append(ids, c["client_id"].(string))
			}
		}
		return ids
	}
	want := []string{adminStaticID, loginID}
	slices.Sort(want)
	if got := listed(); !slices.Equal(got, want) {
		t.Errorf("static clients listed with their store copies: %v, want %v once each", got, want)
	}

	ctx := context.Background()
	for _, id := range want {
		if err := e.Store.DeleteClient(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := listed(); !slices.Equal(got, want) {
		t.Errorf("static clients listed once the store lost them: %v, want %v", got, want)
	}
	// Paging: with limit=1 every client comes once, in order.
	e.createClient(map[string]any{"client_id": "dyn", "redirect_uris": []string{"https://dyn.example.com/cb"}})
	var paged []string
	for after := ""; ; {
		page := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients?limit=1&after="+after, nil)
		for _, it := range page["clients"].([]any) {
			paged = append(paged, it.(map[string]any)["client_id"].(string))
		}
		next, _ := page["next"].(string)
		if next == "" || len(paged) > 10 {
			break
		}
		after = next
	}
	if want := []string{"dyn", adminStaticID, loginID}; !slices.Equal(paged, want) {
		t.Errorf("paged with limit=1: %v, want %v", paged, want)
	}

	got := e.mustCall(http.StatusOK, http.MethodGet, "/admin/clients/"+adminStaticID, nil)
	if got["static"] != true || got["client_name"] != "Static app" {
		t.Errorf("GET a static client the store lost: %v", got)
	}
	status, body := e.call(http.MethodPost, "/admin/clients", map[string]any{"client_id": adminStaticID, "redirect_uris": []string{"https://evil.example.com/cb"}})
	if status != http.StatusConflict || !strings.Contains(fmt.Sprint(body["error_description"]), "static client") {
		t.Errorf("create a client with a static id the store lost: %d %v, want 409 naming the static client", status, body)
	}
	if _, err := e.Store.GetClient(ctx, adminStaticID); err == nil {
		t.Error("the refused create wrote the client anyway")
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodPut, "/admin/clients/" + adminStaticID},
		{http.MethodDelete, "/admin/clients/" + adminStaticID},
		{http.MethodPost, "/admin/clients/" + adminStaticID + "/secret"},
	} {
		var body any
		if r.method == http.MethodPut {
			body = map[string]any{"redirect_uris": []string{"https://evil.example.com/cb"}}
		}
		status, resp := e.call(r.method, r.path, body)
		if status != http.StatusConflict || resp["error"] != "static_client" {
			t.Errorf("%s %s of a static client the store lost: %d %v, want 409 static_client", r.method, r.path, status, resp)
		}
	}

	// A whole login with the static client, the store knowing nothing of it,
	// and not asked about it once.
	counter.take(loginID)
	rp := e.newRP(map[string]any{"client_id": loginID, "client_secret": loginSecret, "scope": "openid phone", "token_endpoint_auth_method": "client_secret_basic"})
	phone := adminPhone()
	_, idt := rp.login(phone)
	var claims struct {
		Phone string `json:"phone_number"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Phone != phone {
		t.Errorf("ID token phone %q (%v), want %s", claims.Phone, err, phone)
	}
	if reads := counter.take(loginID); len(reads) != 0 {
		t.Errorf("the store was asked for the static client: %v", reads)
	}
	// The wrong secret is still refused: the static copy carries the hash.
	rp.conf.ClientSecret = "wrong-" + loginSecret
	code, verifier := rp.authorize(adminPhone())
	if _, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("token request with a wrong secret: %v, want invalid_client", err)
	}
}

// A static client removed from the configuration is revoked, although its
// copy stays in the store (seeded by an earlier start): the provider does not
// know it, and the admin API can delete the stale copy.
func TestStaticClientRemovedFromTheConfiguration(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	stale := storage.Client{ID: "removed-app", Name: "Removed", RedirectURIs: []string{adminRedirect},
		Scopes: []string{"openid", "phone"}, SkipConsent: true, Static: true,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	if err := e.Store.CreateClient(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := e.P.getClient(ctx, stale.ID); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("the provider still serves a static client its configuration dropped: %v", err)
	}
	if status, body := e.call(http.MethodGet, "/admin/clients/"+stale.ID, nil); status != http.StatusNotFound {
		t.Errorf("GET of the stale copy: %d %v, want 404", status, body)
	}
	e.mustCall(http.StatusNoContent, http.MethodDelete, "/admin/clients/"+stale.ID, nil)
	if _, err := e.Store.GetClient(ctx, stale.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the stale copy is still stored after DELETE: %v", err)
	}
	// A static client of this configuration stays read-only.
	if status, _ := e.call(http.MethodDelete, "/admin/clients/"+adminStaticID, nil); status != http.StatusConflict {
		t.Errorf("DELETE of a static client: %d, want 409", status)
	}
}

// Two static clients with one id (a config file client named like a --dev
// one) are refused at start: one would silently replace the other.
func TestStaticClientDefinedTwice(t *testing.T) {
	var opts Options
	newAdminEnv(t, func(o *Options) { opts = *o })
	opts.StaticClients = append(opts.StaticClients, StaticClient{Client: storage.Client{
		ID: adminStaticID, Name: "Another", RedirectURIs: []string{"https://other.example.com/cb"}, Scopes: []string{"openid"},
	}})
	if _, err := New(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("New with a static client defined twice: %v, want an error", err)
	}
}
