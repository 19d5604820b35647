package storage

import (
	"math"
	"time"
)

// SlidingWindow decides one rate-limit event with the sliding-window-counter
// algorithm, the arithmetic every backend shares (storage/redis mirrors it in Lua).
//
// Time is cut into fixed windows of length window. prev and cur are the events
// counted in the previous and the current fixed window, elapsed is how far into
// the current window now is. The previous window counts in proportion to its
// overlap with the sliding window that ends now:
//
//	estimate = prev*(window-elapsed)/window + cur
//
// The event is allowed when estimate+1 <= limit (the caller then increments cur).
// Otherwise retryAfter is the earliest time at which it would be allowed,
// assuming no other event happens meanwhile.
func SlidingWindow(prev, cur int64, elapsed, window time.Duration, limit int) (allowed bool, retryAfter time.Duration) {
	if limit <= 0 || window <= 0 {
		return false, window
	}
	w := float64(window)
	e := float64(elapsed)
	l := float64(limit)
	p := float64(prev)
	c := float64(cur)
	if p*(w-e)/w+c+1 <= l {
		return true, 0
	}
	// Still inside this window: the previous window's weight must fall far enough.
	if c+1 <= l && p > 0 {
		// p*(w-t)/w + c + 1 <= l  <=>  t >= w*(1-(l-c-1)/p)
		t := w * (1 - (l-c-1)/p)
		if t < w {
			return false, ceilDuration(t - e)
		}
	}
	// In the next window the current count becomes the previous one:
	// c*(w-t)/w + 1 <= l  <=>  t >= w*(1-(l-1)/c)
	t := 0.0
	if c > 0 {
		t = math.Max(0, w*(1-(l-1)/c))
	}
	return false, ceilDuration(w - e + t)
}

// ceilDuration rounds a float nanosecond count up to whole milliseconds, so a
// caller that waits retryAfter is never early by a rounding error.
func ceilDuration(ns float64) time.Duration {
	ms := math.Ceil(ns / float64(time.Millisecond))
	if ms < 1 {
		ms = 1
	}
	return time.Duration(ms) * time.Millisecond
}
