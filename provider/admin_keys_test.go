package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/otpgate/otpgate/storage"
)

// adminKeys returns GET /admin/keys as kid → key.
func (e *adminEnv) adminKeys() map[string]map[string]any {
	e.t.Helper()
	body := e.mustCall(http.StatusOK, http.MethodGet, "/admin/keys", nil)
	out := map[string]map[string]any{}
	for _, k := range body["keys"].([]any) {
		m := k.(map[string]any)
		out[m["kid"].(string)] = m
	}
	return out
}

func TestAdminListKeys(t *testing.T) {
	e := newAdminEnv(t)
	body := e.mustCall(http.StatusOK, http.MethodGet, "/admin/keys", nil)
	list := body["keys"].([]any)
	algs := map[string]bool{}
	for _, k := range list {
		m := k.(map[string]any)
		algs[m["alg"].(string)] = true
		if m["state"] != storage.KeyCurrent || m["signing"] != true || m["created_at"] == "" || m["kid"] == "" {
			t.Errorf("key %v: want a current signing key with kid and created_at", m)
		}
		for field := range m {
			if !slices.Contains([]string{"kid", "alg", "state", "created_at", "expires_at", "signing"}, field) {
				t.Errorf("key has field %q: only public metadata may be listed", field)
			}
		}
	}
	if len(list) != 2 || !algs["RS256"] || !algs["ES256"] {
		t.Errorf("keys %v, want one RS256 and one ES256", list)
	}
}

func TestAdminRotateKeys(t *testing.T) {
	e := newAdminEnv(t)
	before := e.adminKeys()
	kidOf := func(keys map[string]map[string]any, alg string) string {
		for kid, k := range keys {
			if k["alg"] == alg && k["signing"] == true {
				return kid
			}
		}
		return ""
	}
	oldRS, oldES := kidOf(before, "RS256"), kidOf(before, "ES256")

	// ?alg=ES256 rotates ES256 only.
	res := e.mustCall(http.StatusOK, http.MethodPost, "/admin/keys/rotate?alg=ES256", nil)
	rotated := res["rotated"].([]any)
	if len(rotated) != 1 || rotated[0].(map[string]any)["alg"] != "ES256" {
		t.Fatalf("rotated %v, want ES256 only", rotated)
	}
	r := rotated[0].(map[string]any)
	if fmt.Sprint(r["retired"]) != "["+oldES+"]" || r["kid"] == oldES {
		t.Errorf("rotation %v, want %s retired", r, oldES)
	}
	wantUntil := e.Clock.Now().UTC().Add(e.P.opts.IDTokenTTL + keyRetireMargin).Truncate(time.Second)
	if until, _ := time.Parse(time.RFC3339, res["retired_until"].(string)); !until.Equal(wantUntil) {
		t.Errorf("retired_until %v, want %v (the longest token lifetime + margin)", res["retired_until"], wantUntil)
	}
	after := e.adminKeys()
	if after[oldES]["state"] != storage.KeyRetired || after[oldES]["expires_at"] == nil || after[oldES]["signing"] != false {
		t.Errorf("old ES256 key after rotation: %v", after[oldES])
	}
	if kidOf(after, "RS256") != oldRS || after[oldRS]["state"] != storage.KeyCurrent {
		t.Errorf("RS256 changed on an ES256 rotation")
	}
	newES := kidOf(after, "ES256")
	if newES != r["kid"] {
		t.Errorf("signing ES256 key %s, want the rotated one %v", newES, r["kid"])
	}

	// No alg: both.
	res = e.mustCall(http.StatusOK, http.MethodPost, "/admin/keys/rotate", nil)
	var algs []string
	for _, r := range res["rotated"].([]any) {
		algs = append(algs, r.(map[string]any)["alg"].(string))
	}
	if !slices.Equal(algs, []string{"RS256", "ES256"}) {
		t.Errorf("rotated %v, want RS256 and ES256", algs)
	}
	if n := len(res["keys"].([]any)); n != 5 {
		t.Errorf("%d keys published after two rotations, want 5 (2 current, 3 retired)", n)
	}

	for _, bad := range []string{"HS256", "none", "rs256"} {
		status, body := e.call(http.MethodPost, "/admin/keys/rotate?alg="+bad, nil)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("alg=%s: status %d %v, want 400 invalid_request", bad, status, body)
		}
	}
}

// publicJWKS fetches the JWKS the way a relying party does.
func (e *adminEnv) publicJWKS() jose.JSONWebKeySet {
	e.t.Helper()
	resp, err := http.Get(e.Public.URL + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		e.t.Fatalf("JWKS: %v: %s", err, raw)
	}
	return set
}

// verifyAgainst checks an ID token's signature with the key its kid names in set.
func verifyAgainst(set jose.JSONWebKeySet, token string) error {
	sig, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return err
	}
	kid := sig.Signatures[0].Protected.KeyID
	keys := set.Key(kid)
	if len(keys) == 0 {
		return fmt.Errorf("kid %s is not in the JWKS", kid)
	}
	_, err = sig.Verify(keys[0])
	return err
}

// TestAdminKeyRotationKeepsTokensVerifiable: an ID token signed before a
// rotation still verifies against the public JWKS after it, until every token
// the old key could have signed has expired; then the key leaves the JWKS and
// the token no longer verifies.
func TestAdminKeyRotationKeepsTokensVerifiable(t *testing.T) {
	e := newAdminEnv(t)
	client := e.createClient(map[string]any{"redirect_uris": []string{adminRedirect}, "skip_consent": true, "scope": "openid"})
	rp := e.newRP(client)

	tok, _ := rp.login(adminPhone())
	before := tok.Extra("id_token").(string)
	oldKid := adminJWTHeader(t, before)["kid"].(string)
	if err := verifyAgainst(e.publicJWKS(), before); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	res := e.mustCall(http.StatusOK, http.MethodPost, "/admin/keys/rotate?alg=RS256", nil)
	newKid := res["rotated"].([]any)[0].(map[string]any)["kid"].(string)

	// Right after the rotation, and just before the old key's expiry, the old
	// token still verifies; new tokens are signed with the new key.
	if err := verifyAgainst(e.publicJWKS(), before); err != nil {
		t.Fatalf("right after rotation: %v", err)
	}
	tok2, _ := rp.login(adminPhone())
	after := tok2.Extra("id_token").(string)
	if kid := adminJWTHeader(t, after)["kid"]; kid != newKid {
		t.Fatalf("token after rotation signed by %v, want the new key %s", kid, newKid)
	}
	retire := e.P.opts.KeyRetireAfter
	if retire < e.P.opts.IDTokenTTL || retire < e.P.opts.AccessTokenTTL {
		t.Fatalf("KeyRetireAfter %s is shorter than a token lifetime", retire)
	}
	e.Clock.Advance(retire - time.Second)
	if err := verifyAgainst(e.publicJWKS(), before); err != nil {
		t.Fatalf("one second before the old key expires: %v", err)
	}

	// Past the expiry the old key is gone: its tokens no longer verify.
	e.Clock.Advance(2 * time.Second)
	set := e.publicJWKS()
	if len(set.Key(oldKid)) != 0 {
		t.Fatalf("the retired key %s is still published after its expiry", oldKid)
	}
	if err := verifyAgainst(set, before); err == nil {
		t.Fatal("a token signed by an expired key still verifies")
	}
	if err := verifyAgainst(set, after); err != nil {
		t.Fatalf("a token signed by the current key: %v", err)
	}
	if _, ok := e.adminKeys()[oldKid]; ok {
		t.Error("GET /admin/keys still lists the expired key")
	}
}

func TestKeyRetireAfterOption(t *testing.T) {
	e := newAdminEnv(t, func(o *Options) { o.IDTokenTTL = 2 * time.Hour; o.AccessTokenTTL = 3 * time.Hour })
	if want := 3*time.Hour + keyRetireMargin; e.P.opts.KeyRetireAfter != want {
		t.Errorf("default KeyRetireAfter %s, want the longest token TTL + margin = %s", e.P.opts.KeyRetireAfter, want)
	}
	o := e.P.opts
	o.KeyRetireAfter = 3 * time.Hour // shorter than TTL + margin
	if _, err := New(context.Background(), o); err == nil || !strings.Contains(err.Error(), "KeyRetireAfter") {
		t.Errorf("New with KeyRetireAfter below the token lifetime: %v, want an error", err)
	}
	o.KeyRetireAfter = 48 * time.Hour
	p, err := New(context.Background(), o)
	if err != nil || p.opts.KeyRetireAfter != 48*time.Hour {
		t.Errorf("a longer KeyRetireAfter: %v, %v", err, p)
	}
	o.KeyRotationInterval = -time.Hour
	if _, err := New(context.Background(), o); err == nil {
		t.Error("New with a negative KeyRotationInterval: want an error")
	}
}

func TestScheduledKeyRotation(t *testing.T) {
	const interval = 24 * time.Hour
	e := newAdminEnv(t, func(o *Options) { o.KeyRotationInterval = interval })
	ctx := context.Background()
	signing := func() map[string]string {
		out := map[string]string{}
		for kid, k := range e.adminKeys() {
			if k["signing"] == true {
				out[k["alg"].(string)] = kid
			}
		}
		return out
	}
	// The seed keys were created when the environment started.
	start := signing()
	if due := e.P.rotateDueKeys(ctx); due != nil {
		t.Fatalf("fresh keys rotated: %v", due)
	}
	e.Clock.Advance(interval - time.Minute)
	if due := e.P.rotateDueKeys(ctx); due != nil {
		t.Fatalf("keys younger than the interval rotated: %v", due)
	}
	e.Clock.Advance(time.Minute)
	if due := e.P.rotateDueKeys(ctx); !slices.Equal(due, []string{"RS256", "ES256"}) {
		t.Fatalf("due at the interval: %v, want both algorithms", due)
	}
	now := signing()
	if now["RS256"] == start["RS256"] || now["ES256"] == start["ES256"] {
		t.Fatalf("signing keys %v did not change from %v", now, start)
	}

	// A second instance sharing the store finds nothing to do.
	second, err := New(ctx, func() Options { o := e.P.opts; o.StaticClients = nil; return o }())
	if err != nil {
		t.Fatal(err)
	}
	if due := second.rotateDueKeys(ctx); due != nil {
		t.Errorf("second instance rotated again: %v", due)
	}
	if due := e.P.rotateDueKeys(ctx); due != nil {
		t.Errorf("rotated twice in one interval: %v", due)
	}

	// The scheduler's changes are audited.
	var actors []string
	for _, ev := range e.Log.events(t) {
		if ev["event"] == eventKeysRotated {
			actors = append(actors, ev["actor"].(string))
		}
	}
	if !slices.Equal(actors, []string{actorScheduler, actorScheduler}) {
		t.Errorf("rotation audit actors %v, want the scheduler twice", actors)
	}
}

func TestRunKeyRotationStopsWithItsContext(t *testing.T) {
	// Interval 0: returns at once.
	e := newAdminEnv(t)
	done := make(chan struct{})
	go func() { e.P.RunKeyRotation(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunKeyRotation with no interval did not return")
	}

	// An interval: checks at once (the clock says the keys are old), rotates,
	// and returns when the context ends.
	e = newAdminEnv(t, func(o *Options) { o.KeyRotationInterval = time.Hour })
	e.Clock.Advance(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { e.P.RunKeyRotation(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		keys, err := e.Store.ListKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled rotation: %d keys", len(keys))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("RunKeyRotation did not stop with its context")
	}
	if errors.Is(ctx.Err(), context.Canceled) && strings.Contains(e.Log.String(), "scheduled rotation failed") {
		t.Errorf("a cancelled rotation was logged as a failure:\n%s", e.Log.String())
	}
}
