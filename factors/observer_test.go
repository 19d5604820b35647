package factors

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// answering is a Factor whose Start and Verify return err.
type answering struct{ err error }

func (a answering) Name() string  { return "test" }
func (a answering) AMR() []string { return nil }
func (a answering) Start(context.Context, StartRequest) (Challenge, error) {
	return Challenge{}, a.err
}
func (a answering) Resend(context.Context, ResendRequest) (Challenge, error) {
	return Challenge{}, a.err
}
func (a answering) Verify(context.Context, string, string) (Result, error) { return Result{}, a.err }

type outcomes []string

func (o *outcomes) SMSSent(string, int)              {}
func (o *outcomes) SMSFailed(string, int, string)    {}
func (o *outcomes) SMSRefused(int, string)           {}
func (o *outcomes) Challenge(factor, outcome string) { *o = append(*o, factor+" "+outcome) }

func TestObserveOutcomes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		want string // "" when nothing is reported
	}{
		{nil, "test verified"},
		{&InvalidCodeError{Remaining: 2}, "test failed"},
		{ErrTooManyAttempts, "test locked"},
		{&LimitError{Reason: "attempts", Err: ErrTooManyAttempts}, "test locked"},
		{fmt.Errorf("wrapped: %w", ErrExpired), "test expired"},
		{ErrNotFound, ""},
		{errors.New("store down"), ""},
	} {
		var got outcomes
		_, _ = Observe(answering{tc.err}, &got).Verify(ctx, "id", "123456")
		if fmt.Sprint(got) != fmt.Sprint(outcomes{tc.want}) && !(tc.want == "" && len(got) == 0) {
			t.Errorf("Verify error %v: reported %q, want %q", tc.err, got, tc.want)
		}
	}
	var got outcomes
	f := Observe(answering{}, &got)
	_, _ = f.Start(ctx, StartRequest{})
	_, _ = Observe(answering{&LimitError{Reason: "phone"}}, &got).Start(ctx, StartRequest{})
	if fmt.Sprint(got) != fmt.Sprint(outcomes{"test started"}) {
		t.Errorf("Start: reported %q, want one start", got)
	}
	if Observe(f, nil) != f {
		t.Error("Observe with a nil observer wraps anyway")
	}
}
