package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/otpgate/otpgate/storage"
)

// casRecord describes a record kind whose Update method has compare-and-swap
// semantics (clients, flows, keys), so one set of tests covers all of them.
type casRecord[T any] struct {
	create func(ctx context.Context, id string) error
	get    func(ctx context.Context, id string) (T, error)
	update func(ctx context.Context, id string, fn func(T) (T, error)) (T, error)
	// change records updater i's change in v; count says how many v holds.
	change func(v T, i int) T
	count  func(v T) int
}

// updaters is how many goroutines update one record at once.
const updaters = 20

func testCAS[T any](t *testing.T, prefix string, r casRecord[T]) {
	t.Run("UpdateMissing", func(t *testing.T) {
		t.Parallel()
		_, err := r.update(t.Context(), newID(prefix), func(v T) (T, error) { return r.change(v, 0), nil })
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("UpdateApplied", func(t *testing.T) {
		t.Parallel()
		id := newID(prefix)
		must(t, r.create(t.Context(), id))
		got, err := r.update(t.Context(), id, func(v T) (T, error) { return r.change(v, 0), nil })
		must(t, err)
		stored, err := r.get(t.Context(), id)
		must(t, err)
		if r.count(got) != 1 || r.count(stored) != 1 {
			t.Fatalf("after one update: returned %d changes, stored %d, want 1", r.count(got), r.count(stored))
		}
	})

	t.Run("UpdateErrorAborts", func(t *testing.T) {
		t.Parallel()
		id := newID(prefix)
		must(t, r.create(t.Context(), id))
		boom := errors.New("update refused")
		_, err := r.update(t.Context(), id, func(v T) (T, error) { return r.change(v, 0), boom })
		wantErr(t, err, boom)
		stored, err := r.get(t.Context(), id)
		must(t, err)
		if n := r.count(stored); n != 0 {
			t.Fatalf("a failed update was stored (%d changes)", n)
		}
	})

	t.Run("ConcurrentUpdatersAllApplied", func(t *testing.T) {
		t.Parallel()
		id := newID(prefix)
		must(t, r.create(t.Context(), id))
		errs := make([]error, updaters)
		race(updaters, func(i int) {
			_, errs[i] = r.update(t.Context(), id, func(v T) (T, error) { return r.change(v, i), nil })
		})
		must(t, errors.Join(errs...))
		stored, err := r.get(t.Context(), id)
		must(t, err)
		if n := r.count(stored); n != updaters {
			t.Fatalf("%d concurrent updates left %d changes: updates were lost", updaters, n)
		}
	})
}

// changeName is what updater i adds to a record.
func changeName(i int) string {
	return fmt.Sprintf("https://rp.example/cb/%d", i)
}
