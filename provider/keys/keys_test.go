package keys

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite/token/jwt"

	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// clock is a fake time source shared by Managers and, when wanted, the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore(t testing.TB, opts ...memory.Option) *memory.Store {
	t.Helper()
	s := memory.New(opts...)
	t.Cleanup(func() { s.Close() })
	return s
}

func newManager(t testing.TB, store storage.KeyStore, opts ...Option) *Manager {
	t.Helper()
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	m, err := NewManager(store, testSecret, opts...)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func ensure(t testing.TB, m *Manager) {
	t.Helper()
	if err := m.Ensure(context.Background()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func kidOf(t testing.TB, m *Manager, alg string) string {
	t.Helper()
	kid, _, err := m.SigningKey(context.Background(), alg)
	if err != nil {
		t.Fatalf("SigningKey(%s): %v", alg, err)
	}
	return kid
}

func jwks(t testing.TB, m *Manager) *jose.JSONWebKeySet {
	t.Helper()
	set, err := m.JWKS(context.Background())
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	return set
}

func jwksJSON(t testing.TB, m *Manager) string {
	t.Helper()
	b, err := json.Marshal(jwks(t, m))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func kids(set *jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func sign(t testing.TB, m *Manager, header map[string]any) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "https://otpgate.test", "sub": "s1", "exp": time.Now().Add(time.Hour).Unix()}
	tok, sig, err := m.Signer().Generate(context.Background(), claims, &jwt.Headers{Extra: header})
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if !strings.HasSuffix(tok, "."+sig) {
		t.Fatalf("Generate: signature %q is not the token's last part", sig)
	}
	return tok
}

// verifyWithJWKS checks token the way a relying party does: the JWKS goes
// through JSON, the key is picked by kid, go-jose v4 verifies.
func verifyWithJWKS(set *jose.JSONWebKeySet, token string) (jose.Header, error) {
	raw, err := json.Marshal(set)
	if err != nil {
		return jose.Header{}, err
	}
	var published jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &published); err != nil {
		return jose.Header{}, err
	}
	tok, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return jose.Header{}, err
	}
	h := tok.Headers[0]
	found := published.Key(h.KeyID)
	if len(found) != 1 {
		return h, fmt.Errorf("kid %q: %d keys in the JWKS", h.KeyID, len(found))
	}
	if found[0].Use != "sig" || found[0].Algorithm != h.Algorithm {
		return h, fmt.Errorf("kid %q: JWKS entry use=%q alg=%q, token alg %q", h.KeyID, found[0].Use, found[0].Algorithm, h.Algorithm)
	}
	var claims josejwt.Claims
	if err := tok.Claims(found[0].Key, &claims); err != nil {
		return h, err
	}
	if claims.Subject != "s1" {
		return h, fmt.Errorf("sub = %q", claims.Subject)
	}
	return h, nil
}

func TestNewManagerRejectsBadInput(t *testing.T) {
	store := newStore(t)
	for name, tc := range map[string]struct {
		secret []byte
		opts   []Option
		want   string
	}{
		"short secret":   {[]byte("short"), nil, "system_secret must be at least 16 bytes"},
		"small RSA keys": {testSecret, []Option{WithRSABits(1024)}, "WithRSABits"},
		"negative TTL":   {testSecret, []Option{WithCacheTTL(-time.Second)}, "WithCacheTTL"},
		"nil clock":      {testSecret, []Option{WithNow(nil)}, "WithNow"},
		"no retirement":  {testSecret, []Option{WithRetireAfter(0)}, "WithRetireAfter"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewManager(store, tc.secret, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestEnsureCreatesBothAlgorithmsAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	m := newManager(t, store)

	if _, _, err := m.SigningKey(ctx, RS256); err == nil {
		t.Fatal("SigningKey before Ensure: want an error")
	}
	ensure(t, m)
	first, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 {
		t.Fatalf("after Ensure: %d keys, want 2", len(first))
	}
	byAlg := map[string]storage.SigningKey{}
	for _, k := range first {
		if k.State != storage.KeyCurrent || !k.ExpiresAt.IsZero() {
			t.Errorf("key %s: state %q expires %v, want current and no expiry", k.ID, k.State, k.ExpiresAt)
		}
		byAlg[k.Algorithm] = k
	}

	kid, key, err := m.SigningKey(ctx, RS256)
	if err != nil {
		t.Fatal(err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("RS256 key: %T, want a 2048-bit *rsa.PrivateKey", key)
	}
	if kid != byAlg[RS256].ID {
		t.Errorf("RS256 kid %q, stored %q", kid, byAlg[RS256].ID)
	}
	kid, key, err = m.SigningKey(ctx, ES256)
	if err != nil {
		t.Fatal(err)
	}
	if ek, ok := key.(*ecdsa.PrivateKey); !ok || ek.Curve != elliptic.P256() {
		t.Errorf("ES256 key: %T, want a P-256 *ecdsa.PrivateKey", key)
	}
	if kid != byAlg[ES256].ID {
		t.Errorf("ES256 kid %q, stored %q", kid, byAlg[ES256].ID)
	}
	if want, _ := thumbprintKID(key.Public()); kid != want || len(kid) != kidLen {
		t.Errorf("ES256 kid %q, want the truncated thumbprint %q", kid, want)
	}

	ensure(t, m)
	ensure(t, newManager(t, store))
	again, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].ID != first[0].ID || again[1].ID != first[1].ID {
		t.Fatalf("Ensure is not idempotent: %v then %v", kidsOf(first), kidsOf(again))
	}

	if _, _, err := m.SigningKey(ctx, "HS256"); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("SigningKey(HS256): err = %v, want unsupported", err)
	}
}

func kidsOf(list []storage.SigningKey) []string {
	var out []string
	for _, k := range list {
		out = append(out, k.ID+"/"+k.Algorithm+"/"+k.State)
	}
	return out
}

func TestTwoInstancesAgree(t *testing.T) {
	store := newStore(t)
	a, b := newManager(t, store), newManager(t, store)
	ensure(t, a)
	ensure(t, b)
	for _, alg := range algorithms {
		if ka, kb := kidOf(t, a, alg), kidOf(t, b, alg); ka != kb {
			t.Errorf("%s: instance a signs with %s, b with %s", alg, ka, kb)
		}
	}
	if ja, jb := jwksJSON(t, a), jwksJSON(t, b); ja != jb {
		t.Errorf("JWKS differ:\n%s\n%s", ja, jb)
	}
	if n := len(jwks(t, a).Keys); n != 2 {
		t.Errorf("JWKS has %d keys, want 2", n)
	}

	// A token signed by one instance validates on the other.
	tok := sign(t, a, map[string]any{"kid": kidOf(t, a, ES256)})
	if _, err := b.Signer().Validate(context.Background(), tok); err != nil {
		t.Errorf("instance b rejects a token from a: %v", err)
	}
}

func TestConcurrentStartsAgree(t *testing.T) {
	store := newStore(t)
	const instances = 4
	ms := make([]*Manager, instances)
	for i := range ms {
		// No cache: each instance sees the final state as soon as all are done.
		ms[i] = newManager(t, store, WithCacheTTL(0))
	}
	var wg sync.WaitGroup
	errs := make([]error, instances)
	for i, m := range ms {
		wg.Go(func() { errs[i] = m.Ensure(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Ensure: %v", i, err)
		}
	}
	for _, alg := range algorithms {
		want := kidOf(t, ms[0], alg)
		for i, m := range ms[1:] {
			if got := kidOf(t, m, alg); got != want {
				t.Errorf("%s: instance %d signs with %s, instance 0 with %s", alg, i+1, got, want)
			}
		}
	}
	want := jwksJSON(t, ms[0])
	for i, m := range ms[1:] {
		if got := jwksJSON(t, m); got != want {
			t.Errorf("instance %d publishes a different JWKS", i+1)
		}
	}
}

func TestNewestCurrentWins(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	store := newStore(t)
	a := newManager(t, store, WithNow(clk.Now))
	b := newManager(t, store, WithNow(clk.Now))
	ensure(t, a)
	older := kidOf(t, a, ES256)

	// What a lost race leaves behind: a second current ES256 key, created later.
	clk.Advance(time.Second)
	rec, err := b.newKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateKey(ctx, rec); err != nil {
		t.Fatal(err)
	}

	clk.Advance(31 * time.Second) // past the default cache TTL
	for name, m := range map[string]*Manager{"a": a, "b": b} {
		if got := kidOf(t, m, ES256); got != rec.ID {
			t.Errorf("instance %s signs ES256 with %s, want the newest %s", name, got, rec.ID)
		}
		set := jwks(t, m)
		if len(set.Key(older)) != 1 || len(set.Key(rec.ID)) != 1 {
			t.Errorf("instance %s: JWKS %v must publish both current keys", name, kids(set))
		}
	}
	ensure(t, a) // does not fail on two currents

	// Rotation retires every current key of the algorithm.
	newKid, err := a.Rotate(ctx, ES256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list {
		if k.Algorithm == ES256 && k.ID != newKid && k.State != storage.KeyRetired {
			t.Errorf("after Rotate, %s is %s, want retired", k.ID, k.State)
		}
	}
}

func TestSignerES256ByKid(t *testing.T) {
	m := newManager(t, newStore(t))
	ensure(t, m)
	kid := kidOf(t, m, ES256)

	header := map[string]any{"kid": kid, "typ": "JWT"}
	tok := sign(t, m, header)
	h, err := verifyWithJWKS(jwks(t, m), tok)
	if err != nil {
		t.Fatalf("JWKS verification: %v", err)
	}
	if h.Algorithm != "ES256" || h.KeyID != kid {
		t.Errorf("header alg=%q kid=%q, want ES256 and %s", h.Algorithm, h.KeyID, kid)
	}
	if len(header) != 2 {
		t.Errorf("Generate changed the caller's header: %v", header)
	}
	if _, err := m.Signer().Validate(context.Background(), tok); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestSignerDefaultsToRS256(t *testing.T) {
	m := newManager(t, newStore(t))
	ensure(t, m)
	kid := kidOf(t, m, RS256)

	for name, header := range map[string]map[string]any{"no kid": {}, "nil extras": nil, "empty kid": {"kid": ""}} {
		t.Run(name, func(t *testing.T) {
			tok := sign(t, m, header)
			h, err := verifyWithJWKS(jwks(t, m), tok)
			if err != nil {
				t.Fatalf("JWKS verification: %v", err)
			}
			if h.Algorithm != "RS256" || h.KeyID != kid {
				t.Errorf("header alg=%q kid=%q, want RS256 and %s", h.Algorithm, h.KeyID, kid)
			}
			decoded, err := m.Signer().Decode(context.Background(), tok)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if decoded.Claims["sub"] != "s1" || decoded.Header["kid"] != kid {
				t.Errorf("Decode: claims %v header %v", decoded.Claims, decoded.Header)
			}
		})
	}
}

// Sessions name an algorithm, not a kid: the token is signed with the key that
// is current for that algorithm when it is made, even after the key current at
// login has been rotated out and has expired.
func TestSignerAlgorithmHintSurvivesRotation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := newManager(t, newStore(t, memory.WithNow(clk.Now)), WithNow(clk.Now))
	ensure(t, m)
	header := map[string]any{AlgHint: ES256}
	tok := sign(t, m, header)
	h, err := verifyWithJWKS(jwks(t, m), tok)
	if err != nil || h.Algorithm != ES256 || h.KeyID != kidOf(t, m, ES256) {
		t.Fatalf("alg hint ES256: header %+v, err %v", h, err)
	}
	if len(header) != 1 {
		t.Errorf("Generate changed the caller's header: %v", header)
	}
	if _, err := m.Rotate(ctx, ES256, time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	tok = sign(t, m, header)
	h, err = verifyWithJWKS(jwks(t, m), tok)
	if err != nil || h.Algorithm != ES256 || h.KeyID != kidOf(t, m, ES256) {
		t.Fatalf("after rotation: header %+v, err %v", h, err)
	}
	if _, _, err := m.Signer().Generate(ctx, jwt.MapClaims{"sub": "s1"}, &jwt.Headers{Extra: map[string]any{AlgHint: "HS256"}}); err == nil {
		t.Error("an unsupported algorithm hint was accepted")
	}
}

func TestSignerRejects(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, newStore(t))
	ensure(t, m)
	s := m.Signer()

	claims := jwt.MapClaims{"sub": "s1"}
	if _, _, err := s.Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"kid": "no-such-kid"}}); err == nil {
		t.Error("Generate with an unknown kid: want an error")
	}
	if _, _, err := s.Generate(ctx, claims, &jwt.Headers{Extra: map[string]any{"kid": 42}}); err == nil {
		t.Error("Generate with a numeric kid: want an error")
	}

	// Signed by a key otpgate never published.
	other := newManager(t, newStore(t))
	ensure(t, other)
	foreign := sign(t, other, nil)
	if _, err := s.Validate(ctx, foreign); err == nil {
		t.Error("Validate accepted a token signed by an unpublished key")
	}

	// A published kid with a signature from another key.
	good := sign(t, m, nil)
	forged := strings.Join(append(strings.Split(good, ".")[:2], strings.Split(foreign, ".")[2]), ".")
	if _, err := s.Validate(ctx, forged); err == nil {
		t.Error("Validate accepted a bad signature")
	}

	// Expired: Decode still returns the token and a ValidationError saying so,
	// which fosite relies on for id_token_hint.
	expired, _, err := s.Generate(ctx, jwt.MapClaims{"sub": "s1", "exp": time.Now().Add(-time.Hour).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Decode(ctx, expired)
	var ve *jwt.ValidationError
	if !errors.As(err, &ve) || !ve.Has(jwt.ValidationErrorExpired) {
		t.Fatalf("Decode(expired): err = %v, want a ValidationErrorExpired", err)
	}
	if tok == nil || tok.Claims["sub"] != "s1" {
		t.Errorf("Decode(expired) must still return the token, got %+v", tok)
	}
	if _, err := s.Validate(ctx, expired); err == nil {
		t.Error("Validate accepted an expired token")
	}

	if got := s.GetSigningMethodLength(ctx); got != 32 {
		t.Errorf("GetSigningMethodLength = %d, want 32", got)
	}
}

func TestPrivateKeysAreSealed(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	m := newManager(t, store)
	ensure(t, m)

	list, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range list {
		_, key, err := m.SigningKey(ctx, rec.Algorithm)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(rec.Encrypted, der) || bytes.Contains(rec.Encrypted, der[len(der)-32:]) {
			t.Errorf("%s: the private key is stored in the clear", rec.ID)
		}
		var secretPart []byte
		switch k := key.(type) {
		case *rsa.PrivateKey:
			secretPart = k.D.Bytes()
		case *ecdsa.PrivateKey:
			secretPart, _ = k.Bytes()
			secretPart = secretPart[len(secretPart)-32:] // the scalar
		}
		if bytes.Contains(rec.Encrypted, secretPart) || bytes.Contains(rec.Public, secretPart) {
			t.Errorf("%s: the private scalar is stored in the clear", rec.ID)
		}
		if strings.Contains(string(rec.Public), `"d"`) {
			t.Errorf("%s: the public JWK has a private member: %s", rec.ID, rec.Public)
		}
	}

	// Another secret cannot open them, and says why, at start-up already.
	wrong, err := NewManager(store, []byte("another secret, 32 bytes long!!!"))
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Ensure(ctx)
	if err == nil || !strings.Contains(err.Error(), "wrong system_secret?") {
		t.Fatalf("Ensure with a wrong secret: err = %v, want a wrong system_secret error", err)
	}
	for _, alg := range algorithms {
		_, _, err := wrong.SigningKey(ctx, alg)
		kid := kidOf(t, m, alg)
		if want := "keys: cannot decrypt signing key " + kid + ": wrong system_secret?"; err == nil || err.Error() != want {
			t.Errorf("SigningKey(%s) with a wrong secret: err = %v, want %q", alg, err, want)
		}
	}
}

func TestSealedBlobIsBoundToItsRecord(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	m := newManager(t, store)
	ensure(t, m)
	oldKid := kidOf(t, m, ES256)
	newKid, err := m.Rotate(ctx, ES256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var oldBlob []byte
	for _, k := range list {
		if k.ID == oldKid {
			oldBlob = k.Encrypted
		}
	}
	// Someone with write access to the store moves the old key's blob into the new record.
	if _, err := store.UpdateKey(ctx, newKid, func(k storage.SigningKey) (storage.SigningKey, error) {
		k.Encrypted = oldBlob
		return k, nil
	}); err != nil {
		t.Fatal(err)
	}
	fresh := newManager(t, store)
	if _, _, err := fresh.SigningKey(ctx, ES256); err == nil || !strings.Contains(err.Error(), newKid) {
		t.Fatalf("a blob moved to another kid opened: err = %v", err)
	}

	// The additional data alone refuses a relabelled record, even one whose
	// public key still matches the blob.
	rec, err := m.newKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	for name, relabel := range map[string]func(*storage.SigningKey){
		"kid": func(k *storage.SigningKey) { k.ID = "AAAAAAAAAAAAAAAA" },
		"alg": func(k *storage.SigningKey) { k.Algorithm = RS256 },
	} {
		k := rec
		relabel(&k)
		pk, err := parsePublic(k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.open(pk); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
			t.Errorf("relabelled %s: open err = %v, want cannot decrypt", name, err)
		}
	}
	if _, err := m.open(mustParsePublic(t, rec)); err != nil {
		t.Errorf("the untouched record does not open: %v", err)
	}
}

func mustParsePublic(t *testing.T, rec storage.SigningKey) publicKey {
	t.Helper()
	pk, err := parsePublic(rec)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestRotate(t *testing.T) {
	// The store either shares the Manager's clock or runs on real time, lagging
	// behind it: either way the JWKS must drop the key at its ExpiresAt.
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared clock %v", shared), func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			var store *memory.Store
			if shared {
				store = newStore(t, memory.WithNow(clk.Now))
			} else {
				store = newStore(t)
			}
			m := newManager(t, store, WithNow(clk.Now))
			other := newManager(t, store, WithNow(clk.Now))
			ensure(t, m)
			oldKid := kidOf(t, m, ES256)
			rsKid := kidOf(t, m, RS256)
			before := sign(t, m, map[string]any{"kid": oldKid})

			if _, err := m.Rotate(ctx, ES256, 0); err == nil {
				t.Error("Rotate with retireFor 0: want an error")
			}
			if _, err := m.Rotate(ctx, "HS256", time.Hour); err == nil {
				t.Error("Rotate(HS256): want an error")
			}

			const retireFor = 2 * time.Hour
			newKid, err := m.Rotate(ctx, ES256, retireFor)
			if err != nil {
				t.Fatal(err)
			}
			if newKid == oldKid {
				t.Fatal("Rotate returned the old kid")
			}
			// The rotating instance sees the change at once (cache invalidated).
			if got := kidOf(t, m, ES256); got != newKid {
				t.Errorf("after Rotate, ES256 signs with %s, want %s", got, newKid)
			}
			if got := kidOf(t, m, RS256); got != rsKid {
				t.Errorf("Rotate(ES256) changed the RS256 key: %s → %s", rsKid, got)
			}
			list, err := store.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range list {
				if k.ID == oldKid && (k.State != storage.KeyRetired || !k.ExpiresAt.Equal(clk.Now().Add(retireFor))) {
					t.Errorf("old key: state %q expires %v, want retired at now+%s", k.State, k.ExpiresAt, retireFor)
				}
			}
			set := jwks(t, m)
			if len(set.Key(oldKid)) != 1 || len(set.Key(newKid)) != 1 || len(set.Keys) != 3 {
				t.Errorf("JWKS after Rotate: %v, want the old, the new and the RS256 key", kids(set))
			}

			// A token signed before the rotation still verifies, with the JWKS and with the Signer.
			if _, err := verifyWithJWKS(jwks(t, m), before); err != nil {
				t.Errorf("token signed before rotation: %v", err)
			}
			if _, err := m.Signer().Validate(ctx, before); err != nil {
				t.Errorf("Signer rejects a token signed before rotation: %v", err)
			}
			// A session that stored the old kid in its header signs with the successor.
			h, err := verifyWithJWKS(jwks(t, m), sign(t, m, map[string]any{"kid": oldKid}))
			if err != nil || h.KeyID != newKid || h.Algorithm != "ES256" {
				t.Errorf("signing with a retired kid: kid %q alg %q err %v, want %s ES256", h.KeyID, h.Algorithm, err, newKid)
			}

			// The other instance catches up when its cache expires.
			clk.Advance(time.Minute)
			if got := kidOf(t, other, ES256); got != newKid {
				t.Errorf("other instance after its cache TTL signs with %s, want %s", got, newKid)
			}

			// Just before ExpiresAt the old key is still published.
			clk.Advance(retireFor - time.Minute - time.Second)
			if len(jwks(t, m).Key(oldKid)) != 1 {
				t.Error("old key left the JWKS before its ExpiresAt")
			}
			// At ExpiresAt it is gone, even though the cache TTL has not passed.
			clk.Advance(time.Second)
			for name, mm := range map[string]*Manager{"rotating": m, "other": other} {
				set := jwks(t, mm)
				if len(set.Key(oldKid)) != 0 || len(set.Keys) != 2 {
					t.Errorf("%s instance: JWKS at ExpiresAt: %v, want the old key gone", name, kids(set))
				}
				if _, err := verifyWithJWKS(set, before); err == nil {
					t.Errorf("%s instance: a token from the expired key still verifies with the JWKS", name)
				}
				if _, err := mm.Signer().Validate(ctx, before); err == nil {
					t.Errorf("%s instance: Signer accepts a token from the expired key", name)
				}
			}
			if _, _, err := m.Signer().Generate(ctx, jwt.MapClaims{}, &jwt.Headers{Extra: map[string]any{"kid": oldKid}}); err == nil {
				t.Error("Generate with an expired kid: want an error")
			}
		})
	}
}

func BenchmarkSigningKey(b *testing.B) {
	ctx := context.Background()
	m := newManager(b, newStore(b))
	ensure(b, m)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := m.SigningKey(ctx, ES256); err != nil {
				b.Fatal(err)
			}
		}
	})
}
