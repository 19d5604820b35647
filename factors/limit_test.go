package factors

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLimitError(t *testing.T) {
	err := fmt.Errorf("login: %w", &LimitError{Reason: "breaker", RetryAfter: time.Hour, Err: ErrCountryUnavailable})
	var lim *LimitError
	if !errors.As(err, &lim) || lim.Reason != "breaker" || lim.RetryAfter != time.Hour {
		t.Fatalf("errors.As(LimitError) failed on %v", err)
	}
	if !errors.Is(err, ErrCountryUnavailable) || errors.Is(err, ErrSMSUnavailable) {
		t.Errorf("LimitError does not unwrap to exactly its Err: %v", err)
	}
	if msg := (&LimitError{Reason: "phone", RetryAfter: time.Minute}).Error(); !strings.Contains(msg, `"phone"`) || !strings.Contains(msg, "1m0s") {
		t.Errorf("Error() = %q: want the reason and the wait, for logs", msg)
	}
	if errors.Is(&LimitError{Reason: "ip"}, ErrTooManyAttempts) {
		t.Error("a plain rate limit matches ErrTooManyAttempts")
	}
	for _, sentinel := range []error{ErrNumberTypeNotAllowed, ErrSMSUnavailable, ErrCountryUnavailable} {
		if errors.Is(sentinel, ErrRegionNotAllowed) || errors.Is(ErrRegionNotAllowed, sentinel) {
			t.Errorf("%v and ErrRegionNotAllowed match", sentinel)
		}
	}
}
