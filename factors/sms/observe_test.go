package sms_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/otpgate/otpgate/factors/sms"
)

// tally is a factors.Observer that keeps what it is told.
type tally struct {
	mu     sync.Mutex
	events []string
}

func (t *tally) add(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, fmt.Sprintf(format, args...))
}

func (t *tally) SMSSent(provider string, cc int) { t.add("sent %s %d", provider, cc) }
func (t *tally) SMSFailed(provider string, cc int, reason string) {
	t.add("failed %s %d %s", provider, cc, reason)
}
func (t *tally) SMSRefused(cc int, reason string) { t.add("refused %d %s", cc, reason) }
func (t *tally) Challenge(factor, outcome string) { t.add("challenge %s %s", factor, outcome) }

// Each provider of a failover reports its own result: a message the
// fallback delivers is failed at the first provider, sent at the second.
func TestObserveFailover(t *testing.T) {
	primary, fallback := &scripted{err: errDown}, &scripted{}
	obs := &tally{}
	f, err := sms.NewFailover([]sms.Member{
		{Name: "a", Type: "scripted", Sender: sms.Observe("a", primary, obs)},
		{Name: "b", Type: "scripted", Sender: sms.Observe("b", fallback, obs)},
	}, sms.FailoverOptions{Logger: quietDeps().Logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Send(context.Background(), sms.Message{To: "+33612345678", Body: "x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []string{"failed a 33 unavailable", "sent b 33"}
	if fmt.Sprint(obs.events) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", obs.events, want)
	}
}

// Observe keeps the wrapped sender's startup check.
func TestObserveStartupCheck(t *testing.T) {
	s := sms.Observe("a", &scripted{check: errDown}, &tally{})
	c, ok := s.(sms.StartupChecker)
	if !ok || c.StartupCheck(context.Background()) != errDown {
		t.Error("the startup check is lost behind Observe")
	}
}
