package redis

import (
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// Benchmarks against the test Redis (see redistest). Each reports the requests
// sent per operation as roundtrips/op, counted by a hook on the client; setup
// work is excluded.

func BenchmarkCreateChallenge(b *testing.B) {
	s, _, rt := newTestStore(b)
	ctx := b.Context()
	now := time.Now()
	cs := make([]storage.Challenge, b.N)
	for i := range cs {
		cs[i] = challenge(now)
	}
	must(b, s.CreateChallenge(ctx, challenge(now))) // loads the script
	rt.Reset()
	b.ResetTimer()
	for i := range b.N {
		if err := s.CreateChallenge(ctx, cs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}

func BenchmarkVerifyChallenge(b *testing.B) {
	s, _, rt := newTestStore(b)
	ctx := b.Context()
	now := time.Now()
	// Setup: b.N pending challenges, created by a few goroutines.
	ids := make([]string, b.N)
	const workers = 8
	race(workers, func(w int) {
		for i := w; i < b.N; i += workers {
			c := challenge(now)
			ids[i] = c.ID
			if err := s.CreateChallenge(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	_, err := s.VerifyChallenge(ctx, "warm-up", hash("123456"), now) // loads the script
	if err == nil {
		b.Fatal("verify of a missing challenge: no error")
	}
	answer := hash("123456")
	rt.Reset()
	b.ResetTimer()
	for i := range b.N {
		res, err := s.VerifyChallenge(ctx, ids[i], answer, now)
		if err != nil || res.Outcome != storage.VerifyOK {
			b.Fatalf("verify: %v %v", res.Outcome, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}

func BenchmarkAllow(b *testing.B) {
	s, _, rt := newTestStore(b)
	ctx := b.Context()
	_, _, err := s.Allow(ctx, "bench", 1<<30, time.Minute) // loads the script
	must(b, err)
	rt.Reset()
	b.ResetTimer()
	for range b.N {
		ok, _, err := s.Allow(ctx, "bench", 1<<30, time.Minute)
		if err != nil || !ok {
			b.Fatalf("allow: %v %v", ok, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}

// BenchmarkPing is the floor: one PING, one round trip.
func BenchmarkPing(b *testing.B) {
	s, _, rt := newTestStore(b)
	ctx := b.Context()
	rt.Reset()
	b.ResetTimer()
	for range b.N {
		if err := s.Ping(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count())/float64(b.N), "roundtrips/op")
}

// BenchmarkVerifyChallengeParallel measures throughput with many instances'
// worth of concurrent verifications.
func BenchmarkVerifyChallengeParallel(b *testing.B) {
	s, _, _ := newTestStore(b)
	ctx := b.Context()
	now := time.Now()
	c := challenge(now)
	c.MaxAttempts = 1 << 30 // wrong answers forever: the compare-and-count path
	must(b, s.CreateChallenge(ctx, c))
	wrong := hash("000000")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.VerifyChallenge(ctx, c.ID, wrong, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
