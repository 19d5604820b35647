package factors

import (
	"errors"
	"testing"
	"time"

	"github.com/otpgate/otpgate/storage"
)

func TestNormalizeAnswer(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"123456", "123456", true},
		{" 123456 ", "123456", true},
		{"123 456", "123456", true},
		{"123\u00a0456\n", "123456", true},
		{"12345", "", false},
		{"1234567", "", false},
		{"12345a", "", false},
		{"١٢٣٤٥٦", "", false}, // Arabic-Indic digits are not ASCII digits
		{"123-456", "", false},
		{"", "", false},
		{"\xff\xfe\xfd\xfc\xfb\xfa", "", false},
		{string(make([]byte, 1<<20)), "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeAnswer(tt.in, 6)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeAnswer(%.20q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOutcomeMapping(t *testing.T) {
	if err := ResendRefusal("orange", storage.ResendResult{Outcome: storage.ResendOK}); err != nil {
		t.Errorf("ResendOK: %v", err)
	}
	var rl *RateLimitedError
	if err := ResendRefusal("orange", storage.ResendResult{Outcome: storage.ResendTooSoon, RetryAfter: time.Second}); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Errorf("ResendTooSoon: %v", err)
	}
	if err := ResendRefusal("orange", storage.ResendResult{Outcome: storage.ResendTooMany}); err != ErrTooManyResends {
		t.Errorf("ResendTooMany: %v", err)
	}
	if err := ResendRefusal("orange", storage.ResendResult{Outcome: storage.ResendLocked}); err != ErrTooManyAttempts {
		t.Errorf("ResendLocked: %v", err)
	}
	if err := ResendRefusal("smsotp", storage.ResendResult{}); err == nil || err.Error() != "smsotp: resend challenge: unexpected outcome unknown" {
		t.Errorf("unknown outcome: %v", err)
	}
	if VerifyRefusal(storage.VerifyExpired) != ErrExpired || VerifyRefusal(storage.VerifyLocked) != ErrTooManyAttempts || VerifyRefusal(storage.VerifyOK) != nil {
		t.Error("VerifyRefusal maps the wrong errors")
	}
	if StoreError("x", nil) != nil || StoreError("x", storage.ErrNotFound) != ErrNotFound {
		t.Error("StoreError: nil or not found mapped wrongly")
	}
	boom := errors.New("boom")
	if err := StoreError("smsotp: verify challenge", boom); !errors.Is(err, boom) || err.Error() != "smsotp: verify challenge: boom" {
		t.Errorf("StoreError: %v", err)
	}
}
