package provider_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/otpgate/otpgate/factors/guard"
	"github.com/otpgate/otpgate/factors/sms"
	"github.com/otpgate/otpgate/provider"
)

// The docs name only metrics that exist: the Grafana dashboard's queries,
// the alert rules' expressions and the metrics table of
// docs/observability.md, against a registry wired as serve wires it.
func TestMetricsDocs(t *testing.T) {
	reg := prometheus.NewRegistry()
	// As cmd/otpgate/serve.go registers them.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := provider.NewMetrics(reg)
	m.WatchBreakers(func() []sms.BreakerState { return nil })
	budgetInstance(t, m, newStore(t, "memory"), guard.DefaultPolicy())
	exists := registeredNames(reg)

	check := func(where, expr string) {
		t.Helper()
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, name := range names {
			if !exists(name) {
				t.Errorf("%s: %s is not a metric otpgate serves (in %q)", where, name, expr)
			}
		}
	}

	t.Run("grafana-dashboard.json", func(t *testing.T) {
		var d dashboard
		if err := json.Unmarshal(readDoc(t, "grafana-dashboard.json"), &d); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		if d.SchemaVersion < 36 {
			t.Errorf("schemaVersion %d, want at least 36", d.SchemaVersion)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type
			if v.Definition != "" {
				check("variable "+v.Name, v.Definition)
			}
		}
		if vars["DS_PROMETHEUS"] != "datasource" || vars["instance"] != "query" {
			t.Errorf("variables %v, want a datasource variable DS_PROMETHEUS and a query variable instance", vars)
		}
		ids := map[int]bool{}
		n := 0
		var walk func([]dashboardPanel)
		walk = func(panels []dashboardPanel) {
			for _, p := range panels {
				if ids[p.ID] {
					t.Errorf("panel %q: id %d is not unique", p.Title, p.ID)
				}
				ids[p.ID] = true
				if p.Type != "row" {
					n++
					if len(p.Targets) == 0 {
						t.Errorf("panel %q has no query", p.Title)
					}
					if p.Datasource.UID != "${DS_PROMETHEUS}" {
						t.Errorf("panel %q: datasource %q, want ${DS_PROMETHEUS}", p.Title, p.Datasource.UID)
					}
				}
				for _, q := range p.Targets {
					check("panel "+p.Title, q.Expr)
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
		if n < 10 {
			t.Errorf("%d panels, want the dashboard's", n)
		}
	})

	t.Run("prometheus-alerts.yml", func(t *testing.T) {
		// Prometheus's rule file format, every key of it.
		var rules struct {
			Groups []struct {
				Name, Interval string
				QueryOffset    string `yaml:"query_offset"`
				Limit          int
				Rules          []struct {
					Alert, Record, Expr string
					For                 string
					KeepFiringFor       string `yaml:"keep_firing_for"`
					Labels              map[string]string
					Annotations         map[string]string
				}
			}
		}
		dec := yaml.NewDecoder(strings.NewReader(string(readDoc(t, "prometheus-alerts.yml"))))
		dec.KnownFields(true) // a misspelt key would be a rule Prometheus refuses
		if err := dec.Decode(&rules); err != nil {
			t.Fatalf("not a rules file: %v", err)
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				n++
				if r.Alert != "" && (r.Labels["severity"] == "" || r.Annotations["summary"] == "") {
					t.Errorf("alert %s: no severity label or no summary", r.Alert)
				}
				check("rule "+r.Alert+r.Record, r.Expr)
			}
		}
		if n == 0 {
			t.Error("no rule")
		}
	})

	t.Run("observability.md", func(t *testing.T) {
		doc := string(readDoc(t, "observability.md"))
		rows := regexp.MustCompile("(?m)^\\| `([a-z_:]+)` \\|").FindAllStringSubmatch(doc, -1)
		if len(rows) < 8 {
			t.Errorf("the metrics table has %d rows", len(rows))
		}
		for _, r := range rows {
			check("metrics table", r[1])
		}
		for _, block := range regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(doc, -1) {
			check("promql example", block[1])
		}
	})
}

func readDoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../docs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dashboard is what the test reads of a Grafana dashboard.
type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name, Type, Definition string
		}
	}
	Panels []dashboardPanel
}

type dashboardPanel struct {
	ID         int
	Type       string
	Title      string
	Datasource struct{ UID string }
	Targets    []struct{ Expr string }
	Panels     []dashboardPanel // a collapsed row's
}

var (
	// promString is a PromQL string literal: label values are not names.
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// promMetric is a metric name of otpgate's or of the Go and process
	// collectors; label names and functions do not start so.
	promMetric = regexp.MustCompile(`\b(?:otpgate|go|process)_[a-zA-Z0-9_:]*`)
)

// metricNames lists the metric names expr uses.
func metricNames(expr string) []string {
	return promMetric.FindAllString(promString.ReplaceAllString(expr, `""`), -1)
}

// registeredNames reports whether reg has a metric of a name, as queries
// write it: a histogram's series end in _bucket, _sum and _count.
//
// Gather would only list the metrics that have a sample, and a labelled
// metric has none before its first event; so each name is asked of the
// registry itself: registering a collector that describes the name fails
// exactly when a registered collector describes it already.
func registeredNames(reg *prometheus.Registry) func(string) bool {
	described := func(name string) bool {
		p := probe{prometheus.NewDesc(name, "probe", nil, nil)}
		if err := reg.Register(p); err != nil {
			return true
		}
		reg.Unregister(p)
		return false
	}
	return func(name string) bool {
		if described(name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && described(base) {
				return true
			}
		}
		return false
	}
}

// probe is a collector that only describes one metric.
type probe struct{ d *prometheus.Desc }

func (p probe) Describe(ch chan<- *prometheus.Desc) { ch <- p.d }
func (probe) Collect(chan<- prometheus.Metric)      {}
