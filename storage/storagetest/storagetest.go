// Package storagetest is the one conformance suite every storage backend must
// pass. A backend's test file is a few lines:
//
//	func TestStore(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return memory.New() })
//	}
//
// The suite checks the contract written in storage/storage.go, including the
// atomicity promises (N goroutines answer the same challenge, exactly one
// wins) and record expiry with real waits, since Redis expires keys on its own
// clock. It also runs fosite's storage adapter (storage.Fosite) against the
// backend.
//
// It imports storage and fosite only; never provider, factors or cmd.
package storagetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// Run runs the conformance suite. newStore is called once per group of tests
// (Clients, Tokens, …), from parallel tests, and must return a ready store;
// register its Close with t.Cleanup. Stores returned by different calls may
// share one backend (the suite uses random ids everywhere), but a call must not
// wipe data other calls are using (no FLUSHDB in newStore).
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	groups := []struct {
		name string
		run  func(t *testing.T, s storage.Store)
	}{
		{"Ping", testPing},
		{"Clients", testClients},
		{"Tokens", testTokens},
		{"Fosite", testFosite},
		{"Flows", testFlows},
		{"Challenges", testChallenges},
		{"DelegatedChallenges", testDelegatedChallenges},
		{"Sessions", testSessions},
		{"Consent", testConsent},
		{"Keys", testKeys},
		{"Outbox", testOutbox},
		{"RateLimit", testRateLimit},
		{"Counters", testCounters},
		{"TTL", testTTL},
		{"Concurrency", testConcurrency},
		{"CancelledContext", testCancelledContext},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, newStore(t))
		})
	}
}

func testPing(t *testing.T, s storage.Store) {
	must(t, s.Ping(t.Context()))
}

// ---------------------------------------------------------------------------
// Helpers shared by the groups

// newID returns prefix followed by random hex, so parallel tests (and repeated
// runs against a persistent Redis) never collide.
func newID(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// codeHash stands in for the factor's keyed hash of a one-time code.
func codeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// now is the current time at millisecond precision, which every backend can
// store exactly.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// equal compares two records, ignoring time zones and monotonic clock readings
// and treating empty and nil slices alike (backends that store JSON with
// omitempty cannot tell them apart).
func equal[T any](t *testing.T, got, want T) {
	t.Helper()
	g, w := normalize(reflect.ValueOf(got)), normalize(reflect.ValueOf(want))
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("record differs\n got: %+v\nwant: %+v", got, want)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// normalize returns a copy of v with times in UTC and empty slices nil.
func normalize(v reflect.Value) any {
	out := reflect.New(v.Type()).Elem()
	out.Set(v)
	normalizeValue(out)
	return out.Interface()
}

func normalizeValue(v reflect.Value) {
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(v.Interface().(time.Time).UTC().Round(0)))
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				normalizeValue(v.Field(i))
			}
		}
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		for i := range c.Len() {
			normalizeValue(c.Index(i))
		}
		v.Set(c)
	}
}

// race runs fn in n goroutines released at the same instant and waits for all.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

// sleepUntil waits until the wall clock has passed at.
func sleepUntil(at time.Time) {
	time.Sleep(time.Until(at))
}
