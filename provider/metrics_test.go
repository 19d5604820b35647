package provider_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/factors/smsotp"
	"github.com/otpgate/otpgate/provider"
)

// withMetrics wires m as serve does: the outbox sender, the guard (policy p)
// and the factor report to it, and the provider counts requests and tokens
// in it and serves it at /metrics on the admin listener.
func withMetrics(t testing.TB, m *provider.Metrics, p guard.Policy) envOption {
	return withOptions(func(o *provider.Options) {
		sender := sms.Observe("outbox", sms.NewOutbox(o.Store, 100, time.Now), m)
		f, err := smsotp.New(o.Store, sender, smsotp.Options{HashKey: provider.CodeHashKey(o.Secret), Origin: issuerHost(t, o)})
		if err != nil {
			t.Fatalf("smsotp.New: %v", err)
		}
		g, err := guard.Wrap(f, o.Store, provider.GuardKey(testSecret), p, guard.WithLogger(o.Logger), guard.WithObserver(m))
		if err != nil {
			t.Fatalf("guard.Wrap: %v", err)
		}
		o.Factor = factors.Observe(g, m)
		o.Metrics = m
	})
}

// scrape reads /metrics from the admin listener: each sample line's value
// by its name and labels as exposed (`name{a="x",b="y"}`).
func (e *env) scrape() map[string]float64 {
	e.t.Helper()
	resp, err := http.Get(e.Admin.URL + "/metrics")
	if err != nil {
		e.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("scrape: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			e.t.Fatalf("scrape: bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetrics(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		m := provider.NewMetrics(prometheus.NewRegistry())
		policy := guard.DefaultPolicy()
		policy.Limits.Phone.Count = 1 // the second code to phoneA is refused
		e := newEnv(t, kind, withMetrics(t, m, policy))
		r := e.newRP(clientTrusted)

		e.newBrowser().loginTokens(r, phoneATyped, phoneA)
		p := e.newBrowser().askCode(r, phoneA)
		if p.Status != http.StatusTooManyRequests {
			t.Fatalf("second code to the same number: status %d, want 429", p.Status)
		}

		got := e.scrape()
		for sample, want := range map[string]float64{
			`otpgate_http_requests_total{method="POST",route="/oauth2/token",status="200"}`:    1,
			`otpgate_http_request_duration_seconds_count{method="POST",route="/oauth2/token"}`: 1,
			`otpgate_sms_sent_total{calling_code="33",provider="outbox"}`:                      1,
			`otpgate_sms_refused_total{calling_code="33",reason="phone"}`:                      1,
			`otpgate_challenges_total{factor="sms",outcome="started"}`:                         1,
			`otpgate_challenges_total{factor="sms",outcome="verified"}`:                        1,
			`otpgate_tokens_issued_total{grant_type="authorization_code"}`:                     1,
		} {
			if got[sample] != want {
				t.Errorf("%s = %v, want %v", sample, got[sample], want)
			}
		}
		for sample := range got {
			if strings.Contains(sample, "otpgate_sms_failed_total") || strings.Contains(sample, `outcome="failed"`) {
				t.Errorf("unexpected sample %s", sample)
			}
			// Routes are patterns: no raw path with a query or an id in it.
			if strings.HasPrefix(sample, "otpgate_http_requests_total") && strings.Contains(sample, "?") {
				t.Errorf("raw URL in a route label: %s", sample)
			}
		}

		// The public listener does not serve the metrics.
		resp, err := http.Get(e.Srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public /metrics: status %d, want 404", resp.StatusCode)
		}
	})
}

// A nil *Metrics counts nothing and breaks nothing.
func TestNilMetrics(t *testing.T) {
	var m *provider.Metrics
	m.SMSSent("x", 33)
	m.SMSFailed("x", 33, "unavailable")
	m.SMSRefused(33, "phone")
	m.Challenge("sms", factors.OutcomeStarted)
	m.WatchBreakers(func() []sms.BreakerState { return nil })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler: %d, want 404", rec.Code)
	}
}

// down is an SMS provider that is always unavailable.
type down struct{}

func (down) Send(context.Context, sms.Message) (string, error) {
	return "", &sms.SendError{Failure: sms.FailureUnavailable, Err: errors.New("down")}
}

// The breaker gauge follows the failover's breakers at each scrape.
func TestMetricsBreakerState(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := provider.NewMetrics(reg)
	f, err := sms.NewFailover([]sms.Member{{Name: "a", Type: "down", Sender: down{}}, {Name: "b", Type: "down", Sender: down{}}},
		sms.FailoverOptions{Breaker: sms.Breaker{Failures: 1, Cooldown: time.Hour}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m.WatchBreakers(f.Breakers)
	state := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "otpgate_sms_breaker_state" {
				continue
			}
			for _, s := range mf.GetMetric() {
				out[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			}
		}
		return out
	}
	if got := state(); got["a"] != 0 || got["b"] != 0 || len(got) != 2 {
		t.Errorf("before any failure: %v, want both closed (0)", got)
	}
	_, _ = f.Send(context.Background(), sms.Message{To: "+33612345678", Body: "x"})
	if got := state(); got["a"] != 1 || got["b"] != 1 {
		t.Errorf("after a failure at each: %v, want both open (1)", got)
	}
}
