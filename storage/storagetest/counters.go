package storagetest

import (
	"math"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

// testCounters checks storage.Counters: counts shared with Allow, taking
// events back, latches.
func testCounters(t *testing.T, c storage.Store) {
	near := func(t *testing.T, what string, got, want float64) {
		t.Helper()
		// The previous window weighs on the estimate: counts added within a
		// test fit in one window, and a boundary may fall in between.
		if math.Abs(got-want) > 1e-9 && !(got <= want && got >= want-1) {
			t.Fatalf("%s: estimate %v, want %v", what, got, want)
		}
	}

	t.Run("AddReadTakeBack", func(t *testing.T) {
		t.Parallel()
		key := newID("cnt")
		got, err := c.AddCount(t.Context(), key, 0, time.Hour)
		must(t, err)
		near(t, "unknown key", got, 0)
		for i := 1; i <= 3; i++ {
			got, err = c.AddCount(t.Context(), key, 1, time.Hour)
			must(t, err)
			near(t, "after an add", got, float64(i))
		}
		got, err = c.AddCount(t.Context(), key, 0, time.Hour)
		must(t, err)
		near(t, "read", got, 3)
		got, err = c.AddCount(t.Context(), key, -2, time.Hour)
		must(t, err)
		near(t, "after taking 2 back", got, 1)
		got, err = c.AddCount(t.Context(), key, -10, time.Hour)
		must(t, err)
		if got != 0 {
			t.Fatalf("taking back more than was counted: estimate %v, want 0", got)
		}
	})

	t.Run("SharedWithAllow", func(t *testing.T) {
		t.Parallel()
		key := newID("cnt")
		const limit = 3
		if n, _ := allowN(t, c, key, limit, limit, time.Hour); n != limit {
			t.Fatalf("%d of %d allowed", n, limit)
		}
		got, err := c.AddCount(t.Context(), key, 0, time.Hour)
		must(t, err)
		near(t, "count of Allow's events", got, limit)
		// Taking one back makes room for one more event.
		_, err = c.AddCount(t.Context(), key, -1, time.Hour)
		must(t, err)
		if n, _ := allowN(t, c, key, 2, limit, time.Hour); n != 1 {
			t.Fatalf("after taking one event back, %d of 2 allowed, want 1", n)
		}
	})

	t.Run("AddCountsIsAddCountForEveryChange", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		a, b := newID("cnt"), newID("cnt")
		got, err := c.AddCounts(ctx, []storage.CountChange{
			{Key: a, Delta: 2, Window: time.Hour},
			{Key: b, Delta: 5, Window: time.Hour},
			{Key: a, Delta: 0, Window: time.Hour}, // reads what the first change wrote
		})
		must(t, err)
		if len(got) != 3 {
			t.Fatalf("%d estimates for 3 changes", len(got))
		}
		near(t, "a after +2", got[0], 2)
		near(t, "b after +5", got[1], 5)
		near(t, "a read in the same batch", got[2], 2)

		got, err = c.AddCounts(ctx, []storage.CountChange{{Key: b, Delta: -1, Window: time.Hour}, {Key: a, Delta: -1, Window: time.Hour}})
		must(t, err)
		near(t, "b after -1", got[0], 4)
		near(t, "a after -1", got[1], 1)
		// What the batch counted is what Allow limits: a has one event, so
		// two more fit a limit of 3.
		if n, _ := allowN(t, c, a, 3, 3, time.Hour); n != 2 {
			t.Fatalf("after the batches, %d of 3 events on a allowed, want 2", n)
		}
		got, err = c.AddCounts(ctx, nil)
		must(t, err)
		if len(got) != 0 {
			t.Fatalf("no changes: %d estimates", len(got))
		}
	})

	t.Run("SlidesOut", func(t *testing.T) {
		t.Parallel()
		key := newID("cnt")
		const window = 300 * time.Millisecond
		_, err := c.AddCount(t.Context(), key, 5, window)
		must(t, err)
		time.Sleep(2*window + 50*time.Millisecond)
		got, err := c.AddCount(t.Context(), key, 0, window)
		must(t, err)
		if got != 0 {
			t.Fatalf("two windows later: estimate %v, want 0", got)
		}
	})

	t.Run("Latch", func(t *testing.T) {
		t.Parallel()
		key := newID("latch")
		left, err := c.Latch(t.Context(), key)
		must(t, err)
		if left != 0 {
			t.Fatalf("unset latch holds %v", left)
		}
		must(t, c.SetLatch(t.Context(), key, time.Hour))
		left, err = c.Latch(t.Context(), key)
		must(t, err)
		if left <= 59*time.Minute || left > time.Hour {
			t.Fatalf("latch set for 1h holds %v", left)
		}
		must(t, c.SetLatch(t.Context(), key, 0))
		if left, err = c.Latch(t.Context(), key); err != nil || left != 0 {
			t.Fatalf("released latch: %v, %v", left, err)
		}
		must(t, c.SetLatch(t.Context(), key, 200*time.Millisecond))
		time.Sleep(300 * time.Millisecond)
		if left, err = c.Latch(t.Context(), key); err != nil || left != 0 {
			t.Fatalf("latch after its time: %v, %v", left, err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		ctx := cancelled(t)
		if _, err := c.AddCount(ctx, newID("cnt"), 1, time.Hour); err == nil {
			t.Error("AddCount with a cancelled context succeeded")
		}
		if err := c.SetLatch(ctx, newID("latch"), time.Hour); err == nil {
			t.Error("SetLatch with a cancelled context succeeded")
		}
		if _, err := c.Latch(ctx, newID("latch")); err == nil {
			t.Error("Latch with a cancelled context succeeded")
		}
	})
}
