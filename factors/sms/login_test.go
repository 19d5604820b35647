package sms_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/storage/memory"
)

var originCode = regexp.MustCompile(`#(\d{6})$`)

// TestCodeLoginThroughEachSender runs the SMS factor the login pages drive —
// a real code generated, texted through the sender, read back from what the
// fake provider received, and verified — for each provider, and through a
// failover whose primary is down.
func TestCodeLoginThroughEachSender(t *testing.T) {
	type setup struct {
		sender sms.Sender
		texts  func() []string
	}
	senders := map[string]func(t *testing.T) setup{
		"orange": func(t *testing.T) setup {
			f := newOrangeFake(t)
			f.anyText = true
			return setup{openOrange(t, f, quietDeps(), 0), func() []string { f.mu.Lock(); defer f.mu.Unlock(); return f.texts }}
		},
		"twilio": func(t *testing.T) setup {
			f := newTwilioFake(t)
			f.anyText = true
			return setup{openTwilio(t, f.url, 0, nil), func() []string { f.mu.Lock(); defer f.mu.Unlock(); return f.texts }}
		},
		"webhook": func(t *testing.T) setup {
			f := newWebhookFake(t)
			f.anyText = true
			return setup{openWebhook(t, f.url, 0), func() []string {
				f.mu.Lock()
				defer f.mu.Unlock()
				var out []string
				for _, m := range f.got {
					out = append(out, m.Body)
				}
				return out
			}}
		},
		"failover to webhook": func(t *testing.T) setup {
			f := newWebhookFake(t)
			f.anyText = true
			fo := failover(t, sms.FailoverOptions{},
				sms.Member{Name: "primary", Type: "twilio", Sender: openTwilio(t, refusedURL(t), 0, nil)},
				sms.Member{Name: "backup", Type: "webhook", Sender: openWebhook(t, f.url, 0)})
			return setup{fo, func() []string {
				f.mu.Lock()
				defer f.mu.Unlock()
				var out []string
				for _, m := range f.got {
					out = append(out, m.Body)
				}
				return out
			}}
		},
	}
	for name, open := range senders {
		t.Run(name, func(t *testing.T) {
			store := memory.New()
			defer store.Close()
			s := open(t)
			factor, err := smsotp.New(store, s.sender, smsotp.Options{
				HashKey: []byte("login-test-hash-key-0123456789abcdef"),
				Origin:  "login.example.com",
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			ch, err := factor.Start(ctx, factors.StartRequest{FlowID: "flow", Phone: testTo, Locale: "fr", ClientID: "shop"})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			texts := s.texts()
			if len(texts) != 1 {
				t.Fatalf("the provider received %d messages, want 1", len(texts))
			}
			m := originCode.FindStringSubmatch(texts[0])
			if m == nil {
				t.Fatalf("no origin-bound code line in %q", texts[0])
			}
			var invalid *factors.InvalidCodeError
			if _, err := factor.Verify(ctx, ch.ID, "000000"); m[1] != "000000" && !errors.As(err, &invalid) {
				t.Errorf("a wrong code: %v", err)
			}
			res, err := factor.Verify(ctx, ch.ID, m[1])
			if err != nil || res.Phone != testTo {
				t.Errorf("Verify with the texted code = %+v, %v", res, err)
			}
		})
	}
}
