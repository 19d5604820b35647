package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

func newFlow(id string) storage.Flow {
	return storage.Flow{
		ID:          id,
		Step:        "code",
		ClientID:    newID("rp"),
		Request:     []byte(`{"scope":"openid phone"}`),
		BrowserID:   newID("browser"),
		Locale:      "fr",
		Phone:       "+33612345678",
		PhoneLocked: true,
		ChallengeID: newID("challenge"),
		Subject:     newID("sub"),
		AuthTime:    now(),
		AMR:         []string{"sms"},
		ExpiresAt:   now().Add(time.Hour),
	}
}

// storedFlow creates a new flow and returns it as the store reads it back
// (with the version the backend keeps).
func storedFlow(t *testing.T, s storage.Store) storage.Flow {
	t.Helper()
	f := newFlow(newID("flow"))
	must(t, s.CreateFlow(t.Context(), f))
	got, err := s.GetFlow(t.Context(), f.ID)
	must(t, err)
	return got
}

func testFlows(t *testing.T, s storage.Store) {
	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		f := newFlow(newID("flow"))
		must(t, s.CreateFlow(ctx, f))
		wantErr(t, s.CreateFlow(ctx, f), storage.ErrAlreadyExists)

		got, err := s.GetFlow(ctx, f.ID)
		must(t, err)
		f.Version = got.Version // managed by the backend
		equal(t, got, f)

		must(t, s.DeleteFlow(ctx, f.ID))
		_, err = s.GetFlow(ctx, f.ID)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetFlow(ctx, newID("flow"))
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("UpdateBumpsVersion", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		prev := storedFlow(t, s)
		for _, step := range []string{"consent", "done"} {
			got, err := s.UpdateFlow(ctx, prev.ID, func(f storage.Flow) (storage.Flow, error) {
				f.Step = step
				f.Version = 0 // the caller cannot reset the version
				return f, nil
			})
			must(t, err)
			stored, err := s.GetFlow(ctx, prev.ID)
			must(t, err)
			equal(t, got, stored)
			if got.Step != step || got.Version <= prev.Version {
				t.Fatalf("after update to %q: step %q version %d, want the step and a version above %d", step, got.Step, got.Version, prev.Version)
			}
			prev = got
		}
	})

	t.Run("ReplaceFromARead", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		read := storedFlow(t, s)

		next := read
		next.Step, next.ChallengeID = "consent", ""
		got, err := s.ReplaceFlow(ctx, next)
		must(t, err)
		if got.Version != read.Version+1 || got.Step != "consent" {
			t.Fatalf("replace: version %d step %q, want version %d step consent", got.Version, got.Step, read.Version+1)
		}
		stored, err := s.GetFlow(ctx, read.ID)
		must(t, err)
		equal(t, stored, got)

		// A second writer that read the same version lost: nothing changes.
		stale := read
		stale.Step = "done"
		_, err = s.ReplaceFlow(ctx, stale)
		wantErr(t, err, storage.ErrConflict)
		stored, err = s.GetFlow(ctx, read.ID)
		must(t, err)
		equal(t, stored, got)

		must(t, s.DeleteFlow(ctx, read.ID))
		_, err = s.ReplaceFlow(ctx, got)
		wantErr(t, err, storage.ErrNotFound)
	})

	t.Run("ConcurrentReplaceExactlyOne", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		read := storedFlow(t, s)
		exactlyOne(t, racers, func(i int) error {
			next := read
			next.Step = changeName(i)
			_, err := s.ReplaceFlow(ctx, next)
			return err
		}, storage.ErrConflict)
	})

	testCAS(t, "flow", casRecord[storage.Flow]{
		create: func(ctx context.Context, id string) error {
			f := newFlow(id)
			f.AMR = nil
			return s.CreateFlow(ctx, f)
		},
		get:    s.GetFlow,
		update: s.UpdateFlow,
		change: func(f storage.Flow, i int) storage.Flow {
			f.AMR = append(f.AMR, changeName(i))
			return f
		},
		count: func(f storage.Flow) int { return len(f.AMR) },
	})
}
