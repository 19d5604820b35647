package provider_test

// Logins through the provider with the SMS factor sending through each real
// sender type (orange, twilio, webhook) and through a failover whose primary
// is down, each pointed at a small fake of its API (the contracts of
// /work/shared/ref/sms-apis.md). The code is read from the SMS the fake
// received, never from the outbox.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
	"github.com/otpgate/otpgate/storage"
)

const (
	fakeOrangeID     = "orange-client-id"
	fakeOrangeSecret = "orange-client-secret"
	fakeOrangeFrom   = "tel:+33600000000"
	fakeOrangeToken  = "orange-access-token"
	fakeTwilioSID    = "AC0123456789abcdef0123456789abcdef"
	fakeTwilioToken  = "twilio-auth-token"
	fakeWebhookKey   = "webhook-secret-0123456789abcdef0123456789"
)

// sentSMS is one message a fake accepted.
type sentSMS struct{ To, Body string }

// smsFake is an httptest server speaking the Orange token and SMS messaging
// APIs, Twilio's Messages.json and the webhook contract, recording every
// message it accepts. Requests that break the contract fail the test.
type smsFake struct {
	*httptest.Server
	t    testing.TB
	mu   sync.Mutex
	sent []sentSMS
}

func newSMSFake(t testing.TB) *smsFake {
	f := &smsFake{t: t}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *smsFake) record(to, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentSMS{To: to, Body: body})
}

// last returns the newest message, failing when none arrived.
func (f *smsFake) last() sentSMS {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		f.t.Fatal("the fake received no SMS")
	}
	return f.sent[len(f.sent)-1]
}

func (f *smsFake) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func (f *smsFake) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	f.t.Errorf("fake SMS API: %s %s: %s", r.Method, r.URL.Path, why)
	http.Error(w, why, status)
}

func (f *smsFake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost {
		f.refuse(w, r, http.StatusMethodNotAllowed, "not a POST")
		return
	}
	orangeSMS := "/smsmessaging/v1/outbound/" + url.QueryEscape(fakeOrangeFrom) + "/requests"
	switch path := r.URL.EscapedPath(); path {
	case "/oauth/v3/token":
		if id, secret, ok := r.BasicAuth(); !ok || id != fakeOrangeID || secret != fakeOrangeSecret {
			f.refuse(w, r, http.StatusUnauthorized, "bad client credentials")
			return
		}
		if string(body) != "grant_type=client_credentials" {
			f.refuse(w, r, http.StatusBadRequest, "bad grant: "+string(body))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"Bearer","access_token":"`+fakeOrangeToken+`","expires_in":"3600"}`)
	case orangeSMS:
		if r.Header.Get("Authorization") != "Bearer "+fakeOrangeToken {
			f.refuse(w, r, http.StatusUnauthorized, "bad bearer token")
			return
		}
		var req struct {
			Request struct {
				Address       string `json:"address"`
				SenderAddress string `json:"senderAddress"`
				Text          struct {
					Message string `json:"message"`
				} `json:"outboundSMSTextMessage"`
			} `json:"outboundSMSMessageRequest"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Request.SenderAddress != fakeOrangeFrom ||
			!strings.HasPrefix(req.Request.Address, "tel:+") {
			f.refuse(w, r, http.StatusBadRequest, "bad outboundSMSMessageRequest: "+string(body))
			return
		}
		f.record(strings.TrimPrefix(req.Request.Address, "tel:"), req.Request.Text.Message)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	case "/2010-04-01/Accounts/" + fakeTwilioSID + "/Messages.json":
		if user, pass, ok := r.BasicAuth(); !ok || user != fakeTwilioSID || pass != fakeTwilioToken {
			f.refuse(w, r, http.StatusUnauthorized, "bad basic auth")
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("To") == "" || form.Get("From") == "" || form.Get("Body") == "" {
			f.refuse(w, r, http.StatusBadRequest, "bad form: "+string(body))
			return
		}
		f.record(form.Get("To"), form.Get("Body"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`)
	case "/hook":
		if err := sms.VerifyWebhook([]byte(fakeWebhookKey), r.Header.Get(sms.WebhookSignatureHeader), body, time.Now(), time.Minute); err != nil {
			f.refuse(w, r, http.StatusUnauthorized, err.Error())
			return
		}
		var m sms.WebhookMessage
		if err := json.Unmarshal(body, &m); err != nil || m.To == "" || m.Body == "" {
			f.refuse(w, r, http.StatusBadRequest, "bad webhook message: "+string(body))
			return
		}
		f.record(m.To, m.Body)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.refuse(w, r, http.StatusNotFound, "unknown path "+path)
	}
}

// deadURL is the base URL of a closed listener: connections are refused.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return u
}

// senderSpec is one provider entry of an SMS setup, its config in YAML.
func senderSpec(t testing.TB, i int, name, typ, config string) sms.ProviderSpec {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(config), &doc); err != nil {
		t.Fatalf("config of %s: %v", name, err)
	}
	return sms.ProviderSpec{Key: "sms.providers[" + strconv.Itoa(i) + "]", Name: name, Type: typ, Config: doc.Content[0]}
}

func orangeYAML(base string) string {
	return "base_url: " + base + "\nclient_id: " + fakeOrangeID + "\nclient_secret: " + fakeOrangeSecret +
		"\nsender_address: '" + fakeOrangeFrom + "'\ntimeout: 5s\n"
}

func twilioYAML(base string) string {
	return "base_url: " + base + "\naccount_sid: " + fakeTwilioSID + "\nauth_token: " + fakeTwilioToken +
		"\nfrom: '+15005550006'\ntimeout: 5s\n"
}

func webhookYAML(base string) string {
	return "url: " + base + "/hook\nsecret: " + fakeWebhookKey + "\ntimeout: 5s\n"
}

// withSender replaces the environment's factor with the SMS factor sending
// through the setup (opened as a server would, outside --dev).
func withSender(t testing.TB, setup sms.Setup) envOption {
	return withOptions(func(o *provider.Options) {
		sender, err := setup.Open(sms.Deps{Logger: o.Logger})
		if err != nil {
			t.Fatalf("sms setup: %v", err)
		}
		f, err := smsotp.New(o.Store, sender, smsotp.Options{
			HashKey: provider.CodeHashKey(o.Secret),
			Origin:  issuerHost(t, o),
		})
		if err != nil {
			t.Fatalf("smsotp.New: %v", err)
		}
		o.Factor = f
	})
}

func TestSendersE2E(t *testing.T) {
	cases := []struct {
		name   string
		client string
		specs  func(t testing.TB, fake string) []sms.ProviderSpec
	}{
		{"orange", clientConfidential, func(t testing.TB, fake string) []sms.ProviderSpec {
			return []sms.ProviderSpec{senderSpec(t, 0, "orange", "orange", orangeYAML(fake))}
		}},
		{"twilio", clientTrusted, func(t testing.TB, fake string) []sms.ProviderSpec {
			return []sms.ProviderSpec{senderSpec(t, 0, "twilio", "twilio", twilioYAML(fake))}
		}},
		{"webhook", clientConfidential, func(t testing.TB, fake string) []sms.ProviderSpec {
			return []sms.ProviderSpec{senderSpec(t, 0, "hook", "webhook", webhookYAML(fake))}
		}},
		{"failover", clientTrusted, func(t testing.TB, fake string) []sms.ProviderSpec {
			return []sms.ProviderSpec{
				senderSpec(t, 0, "primary", "orange", orangeYAML(deadURL(t))),
				senderSpec(t, 1, "secondary", "webhook", webhookYAML(fake)),
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newSMSFake(t)
			e := newEnv(t, "memory", withSender(t, sms.Setup{Providers: tc.specs(t, fake.URL)}))
			r := e.newRP(tc.client)
			b := e.newBrowser()

			ar, p := b.codePage(r, "06 12 34 56 78")
			if n := fake.count(); n != 1 {
				t.Fatalf("the fake received %d SMS after the phone page, want 1", n)
			}
			if id := e.lastSMSID(); id != "" {
				t.Errorf("the outbox holds a message (%s): the %s sender texts the code", id, tc.name)
			}
			m := fake.last()
			if m.To != phoneA {
				t.Fatalf("SMS went to %s, want %s", m.To, phoneA)
			}
			code := e.smsCode(storage.OutboxMessage{To: m.To, Body: m.Body})
			if lines := strings.Split(strings.TrimSpace(m.Body), "\n"); !strings.HasSuffix(lines[len(lines)-1], "#"+code) {
				t.Errorf("SMS %q: the origin-bound line is not last", m.Body)
			}

			p = b.submit(p.form("/login/code"), map[string]string{"code": code})
			if tc.client == clientConfidential {
				p.expect(http.StatusOK, "/login/consent")
				p = b.submit(p.form("/login/consent"), map[string]string{"decision": "allow"})
			}
			tok := r.exchange(r.callback(p, ar), ar)

			c := tok.Claims
			if !slices.Equal(c.AMR, []string{"sms"}) {
				t.Errorf("amr = %v, want [sms]", c.AMR)
			}
			if c.PhoneNumber == nil || *c.PhoneNumber != phoneA || c.PhoneVerified == nil || !*c.PhoneVerified {
				t.Errorf("phone_number %v, phone_number_verified %v; want %s, true", c.PhoneNumber, c.PhoneVerified, phoneA)
			}
		})
	}
}
