package factors

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestTypedErrorsSurviveWrapping(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("login: %w", err) }

	var rl *RateLimitedError
	if err := wrap(&RateLimitedError{RetryAfter: 12 * time.Second}); !errors.As(err, &rl) || rl.RetryAfter != 12*time.Second {
		t.Errorf("errors.As(RateLimitedError) failed on %v", err)
	}
	var ic *InvalidCodeError
	if err := wrap(&InvalidCodeError{Remaining: 2}); !errors.As(err, &ic) || ic.Remaining != 2 {
		t.Errorf("errors.As(InvalidCodeError) failed on %v", err)
	}
	var de *DeliveryError
	err := wrap(&DeliveryError{Err: io.ErrUnexpectedEOF})
	if !errors.As(err, &de) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("DeliveryError does not unwrap to its cause: %v", err)
	}
	if !strings.Contains((&DeliveryError{}).Error(), "delivery failed") {
		t.Error("DeliveryError without a cause has no message")
	}
	for _, sentinel := range []error{ErrExpired, ErrTooManyAttempts, ErrTooManyResends, ErrNotFound, ErrInvalidPhone, ErrRegionNotAllowed} {
		if !errors.Is(wrap(sentinel), sentinel) {
			t.Errorf("errors.Is(%v) failed", sentinel)
		}
		for _, other := range []error{ErrExpired, ErrTooManyAttempts, ErrTooManyResends, ErrNotFound} {
			if other != sentinel && errors.Is(sentinel, other) {
				t.Errorf("%v matches %v", sentinel, other)
			}
		}
	}
}
