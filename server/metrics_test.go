package server_test

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stunfault/stunfault/faults"
)

// scrape GETs /metrics and parses it with Prometheus' own parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the metric of family name whose labels are
// exactly labels ("k=v" pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := strings.Join(labels, ",")
	for _, m := range f.GetMetric() {
		var got []string
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(got)
		w := strings.Split(want, ",")
		sort.Strings(w)
		if want == "" {
			w = nil
		}
		if strings.Join(got, ",") != strings.Join(w, ",") {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// After real traffic (Bindings that pass, one a rule fails with 403 while a
// webhook call is held, that call answered, a TURN allocation with a
// permission) the counters on /metrics say so.
func TestMetricsAfterTraffic(t *testing.T) {
	rule := whRule("screenpop-403", 403, faults.WebhookMatch{MinInflight: 1})
	e := startWebhookRules(t, "sync", rule)
	c := newSTUNClient(t, e.srv, "udp")
	for range 2 {
		e.wantBinding(t, c, 0, "", "no webhook held")
	}
	calls := e.hold(t, 1, whTicketBody, nil)
	e.wantBinding(t, c, 403, rule.ID, "webhook held")
	e.clk.Advance(whLatency)
	calls[0].answered(t, 201)

	tc := newTURNClient(t, e.srv, "udp", "user", "pass")
	relay, err := tc.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	if err := tc.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
		t.Fatalf("CreatePermission: %v", err)
	}

	fams := scrape(t, e.srv.HTTPURL())
	st, err := e.srv.Faults().Get(rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	bindingIn := func(decision string) string {
		return fmt.Sprintf("method=binding,class=request,direction=in,transport=udp,decision=%s", decision)
	}
	for _, tc := range []struct {
		name   string
		labels string
		min    float64 // at least (the client retransmits every 10 ms)
		exact  bool
	}{
		{"stunfault_messages_total", bindingIn("pass"), 2, false},
		{"stunfault_messages_total", "method=binding,class=success,direction=out,transport=udp,decision=pass", 2, false},
		{"stunfault_messages_total", bindingIn("error"), float64(st.Fired), true},
		{"stunfault_messages_total", "method=allocate,class=request,direction=in,transport=udp,decision=pass", 2, false},
		{"stunfault_rule_fired_total", "rule=" + rule.ID, float64(st.Fired), true},
		{"stunfault_rule_matched_total", "rule=" + rule.ID, float64(st.Matched), true},
		{"stunfault_injected_errors_total", "code=403", float64(st.Fired), true},
		{"stunfault_webhook_requests_total", "webhook=crm,status=201", 1, true},
		{"stunfault_webhook_inflight", "webhook=crm", 0, true},
		{"stunfault_webhook_duration_seconds", "webhook=crm", 1, true},
		{"stunfault_turn_allocations", "", 1, true},
		{"stunfault_turn_permissions", "", 1, true},
		{"stunfault_turn_channels", "", 0, true},
		{"stunfault_journal_firings_total", "", float64(e.srv.Faults().Journal().LastSeq()), true},
		{"stunfault_trace_messages_total", "", 8, false},
	} {
		labels := []string(nil)
		if tc.labels != "" {
			labels = strings.Split(tc.labels, ",")
		}
		got, ok := value(fams, tc.name, labels...)
		switch {
		case !ok:
			t.Errorf("%s{%s}: missing", tc.name, tc.labels)
		case tc.exact && got != tc.min:
			t.Errorf("%s{%s}: got %v, want %v", tc.name, tc.labels, got, tc.min)
		case got < tc.min:
			t.Errorf("%s{%s}: got %v, want at least %v", tc.name, tc.labels, got, tc.min)
		}
	}
	if st.Fired == 0 {
		t.Error("the rule never fired")
	}
	if h := fams["stunfault_webhook_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() != whLatency.Seconds() {
		t.Errorf("webhook latency sum: got %v s, want %v s (the fake clock's latency)", h.GetSampleSum(), whLatency.Seconds())
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("%s: missing (Go and process collectors)", name)
		}
	}
	// A second scrape counts the ended request once.
	if got, _ := value(scrape(t, e.srv.HTTPURL()), "stunfault_webhook_duration_seconds", "webhook=crm"); got != 1 {
		t.Errorf("second scrape: webhook latency count %v, want 1", got)
	}
}

// TestMetricsPerReadLoop: with two read loops on the udp listener, /metrics
// counts the datagrams each loop's socket read, as stats.get lists them,
// and a client the kernel hands to one loop moves only that loop's count.
func TestMetricsPerReadLoop(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil) // two read loops
	clients := clientsOnLoops(t, srv)
	var udp string
	for _, l := range srv.Listeners() {
		if l.Transport == "udp" {
			udp = l.Addr.String()
		}
	}
	perLoop := func() []float64 {
		t.Helper()
		fams := scrape(t, srv.HTTPURL())
		out := make([]float64, len(clients))
		for i := range out {
			v, ok := value(fams, "stunfault_udp_loop_datagrams_total", "listener="+udp, fmt.Sprintf("loop=%d", i))
			if !ok {
				t.Fatalf("stunfault_udp_loop_datagrams_total{listener=%q,loop=\"%d\"}: missing", udp, i)
			}
			out[i] = v
		}
		return out
	}
	before := perLoop()
	for i, l := range udpLoops(t, srv) {
		if before[i] != float64(l.Datagrams) || before[i] < 1 {
			t.Errorf("loop %d: /metrics says %v datagrams, stats.get %d (want equal, at least 1)", i, before[i], l.Datagrams)
		}
	}
	const n = 3
	for range n {
		if m := clients[1].do(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); m.Type != stun.BindingSuccess {
			t.Fatalf("Binding: %s, want success", m.Type)
		}
	}
	after := perLoop()
	if after[0] != before[0] || after[1] != before[1]+n {
		t.Errorf("after %d Bindings from loop 1's client: %v, want [%v %v]", n, after, before[0], before[1]+n)
	}
}
