package provider

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/otpgate/otpgate/factors"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/storage/observe"
)

// Metrics holds otpgate's Prometheus metrics (docs/observability.md) and the
// registry they are served from. It implements factors.Observer, so the
// factors, the guard and the SMS senders report to it without importing
// provider. Every method is safe on a nil *Metrics, which counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	budgetUsed *prometheus.CounterVec // metrics_budget.go
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	smsSent    *prometheus.CounterVec
	smsFailed  *prometheus.CounterVec
	smsRefused *prometheus.CounterVec
	challenges *prometheus.CounterVec
	tokens     *prometheus.CounterVec
	store      *prometheus.HistogramVec
}

var (
	_ factors.Observer = (*Metrics)(nil)
	_ observe.Recorder = (*Metrics)(nil)
)

// NewMetrics registers otpgate's metrics in reg, which /metrics on the admin
// listener then serves. Each caller (serve, each test) brings its own
// registry: nothing goes to prometheus.DefaultRegisterer.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg:        reg,
		budgetUsed: newBudgetUsed(reg),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_http_requests_total",
			Help: "HTTP requests on the public listener, by route (the route pattern, never the raw path), method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "otpgate_http_request_duration_seconds",
			Help:    "Latency of HTTP requests on the public listener, by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		smsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_sms_sent_total",
			Help: "SMS a provider accepted, by provider and country calling code.",
		}, []string{"provider", "calling_code"}),
		smsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_sms_failed_total",
			Help: "SMS a provider did not accept, by provider, country calling code and failure class (unavailable, rejected, unknown).",
		}, []string{"provider", "calling_code", "reason"}),
		smsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_sms_refused_total",
			Help: "SMS the abuse limits refused before any provider, by country calling code and limit (reason).",
		}, []string{"calling_code", "reason"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_challenges_total",
			Help: "Challenge outcomes (started, verified, failed, locked, expired), by factor.",
		}, []string{"factor", "outcome"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "otpgate_tokens_issued_total",
			Help: "Token responses issued at /oauth2/token, by grant type.",
		}, []string{"grant_type"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "otpgate_store_operation_duration_seconds",
			Help: "Latency of storage calls, by Store method (operation) and outcome (ok, not_found, exists, conflict, aborted, canceled, error).",
			// A Redis round trip on a local network is a few hundred
			// microseconds; a second is a store in trouble.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"operation", "outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.smsSent, m.smsFailed, m.smsRefused, m.challenges, m.tokens)
	reg.MustRegister(m.store)
	return m
}

// WatchBreakers exports the SMS providers' circuit breakers as
// otpgate_sms_breaker_state (0 closed, 1 open, 2 half-open), read from
// states at each scrape.
func (m *Metrics) WatchBreakers(states func() []sms.BreakerState) {
	if m == nil || states == nil {
		return
	}
	m.reg.MustRegister(breakerCollector(states))
}

var breakerDesc = prometheus.NewDesc("otpgate_sms_breaker_state",
	"Circuit breaker of each SMS provider: 0 closed, 1 open, 2 half-open.", []string{"provider"}, nil)

type breakerCollector func() []sms.BreakerState

func (breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (b breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range b() {
		v := 0.0
		switch s.State {
		case "open":
			v = 1
		case "half-open":
			v = 2
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, s.Provider)
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SMSSent implements factors.Observer.
func (m *Metrics) SMSSent(provider string, callingCode int) {
	if m == nil {
		return
	}
	m.smsSent.WithLabelValues(provider, callingCodeLabel(callingCode)).Inc()
}

// SMSFailed implements factors.Observer.
func (m *Metrics) SMSFailed(provider string, callingCode int, reason string) {
	if m == nil {
		return
	}
	m.smsFailed.WithLabelValues(provider, callingCodeLabel(callingCode), reason).Inc()
}

// SMSRefused implements factors.Observer.
func (m *Metrics) SMSRefused(callingCode int, reason string) {
	if m == nil {
		return
	}
	m.smsRefused.WithLabelValues(callingCodeLabel(callingCode), reason).Inc()
}

// Challenge implements factors.Observer.
func (m *Metrics) Challenge(factor, outcome string) {
	if m == nil {
		return
	}
	m.challenges.WithLabelValues(factor, outcome).Inc()
}

// tokenIssued counts a successful token response.
func (m *Metrics) tokenIssued(grantType string) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues(grantType).Inc()
}

// StoreOperation implements observe.Recorder: serve wraps the store with
// observe.Wrap, which reports every call here.
func (m *Metrics) StoreOperation(operation, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.store.WithLabelValues(operation, outcome).Observe(d.Seconds())
}

// instrument is the public listener's middleware: one count and one latency
// observation per request, labelled by gin's route pattern ("unmatched" for
// a 404 without a route), so that a scanner's URLs cannot grow the label set.
func (m *Metrics) instrument(c *gin.Context) {
	if m == nil {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	method := c.Request.Method
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch:
	default:
		method = "other" // methods are client input too
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(c.Writer.Status())).Inc()
	m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
}

// callingCodeLabel is the calling code without "+" ("33"), or "unknown".
func callingCodeLabel(cc int) string {
	if cc <= 0 {
		return "unknown"
	}
	return strconv.Itoa(cc)
}
