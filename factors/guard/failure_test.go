package guard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/storage"
	"github.com/otpgate/otpgate/storage/memory"
)

// guardOn is the guard with policy p in front of the SMS factor (dev outbox),
// both on s.
func guardOn(t *testing.T, s storage.Store, p guard.Policy) *guard.Guard {
	t.Helper()
	f, err := smsotp.New(s, sms.NewOutbox(s, 10, nil), smsotp.Options{HashKey: key, Origin: "id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := guard.Wrap(f, s, key, p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// countThenFail counts every limit, then reports an error, as a Redis read
// timeout after the pipeline ran does, or a cluster node that failed while
// the others answered.
type countThenFail struct{ *memory.Store }

func (s countThenFail) AllowEach(ctx context.Context, checks []storage.RateCheck) ([]storage.RateResult, error) {
	res, err := s.Store.AllowEach(ctx, checks)
	if err != nil {
		return nil, err
	}
	return res, errors.New("read timeout")
}

// A store failure while checking the limits sends nothing and keeps no count
// the store says it took: the user is not locked out by an incident.
func TestStoreFailureTakesBackTheCounts(t *testing.T) {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	p := guard.DefaultPolicy()
	p.Limits.Phone = guard.Limit{Count: 1, Window: time.Hour}
	req := factors.StartRequest{Phone: mobileFR, ClientID: "rp", IP: "192.0.2.7", Locale: "en"}
	if _, err := guardOn(t, countThenFail{store}, p).Start(context.Background(), req); err == nil {
		t.Fatal("Start with a failing store: no error")
	}
	// The one send the phone limit allows is still there.
	if _, err := guardOn(t, store, p).Start(context.Background(), req); err != nil {
		t.Fatalf("after the failure, the first real send: %v, want it sent", err)
	}
	if msgs, _ := store.ListOutbox(context.Background(), 10); len(msgs) != 1 {
		t.Fatalf("%d SMS sent, want 1 (none during the failure)", len(msgs))
	}
}

// applyThenFail applies every counter change, then reports an error with the
// estimates, as a Redis read timeout after the pipeline ran would if the
// replies had come back; it records the keys it added to.
type applyThenFail struct {
	*memory.Store
	added []storage.CountChange
}

func (s *applyThenFail) AddCounts(ctx context.Context, changes []storage.CountChange) ([]float64, error) {
	got, err := s.Store.AddCounts(ctx, changes)
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		if c.Delta > 0 {
			s.added = append(s.added, c)
		}
	}
	return got, errors.New("read timeout")
}

// When the pumping breaker's counts fail after counting the send, the send
// is taken back with the others: nothing was sent.
func TestBreakerCountFailureTakesBackTheSend(t *testing.T) {
	store := &applyThenFail{Store: memory.New()}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if _, err := guardOn(t, store, guard.DefaultPolicy()).Start(ctx, factors.StartRequest{Phone: mobileFR, ClientID: "rp", IP: "192.0.2.7", Locale: "en"}); err == nil {
		t.Fatal("Start with failing breaker counts: no error")
	}
	if len(store.added) == 0 {
		t.Fatal("the breaker counted nothing: the test does not reach the breaker")
	}
	for _, c := range store.added {
		if n, err := store.Store.AddCount(ctx, c.Key, 0, c.Window); err != nil || n != 0 {
			t.Errorf("count %q is %v (%v) after the failed send, want 0", c.Key, n, err)
		}
	}
}
