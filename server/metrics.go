package server

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stunfault/stunfault/faults"
)

// What the per-message counters are indexed by: small enums, so counting a
// message is one atomic add into a fixed array (no map, no allocation).
const (
	nMethods = 9 // methodIndex
	nClasses = 5 // classes, then "" (ChannelData, other)
	nKinds   = faults.NumKinds
	// Injected error codes are 300 to 699.
	minCode, nCodes = 300, 400
)

// methodNames are the method label values, by methodIndex.
var methodNames = [nMethods]string{"binding", "allocate", "refresh", "send", "data", "createpermission", "channelbind", "channeldata", "other"}

var classNames = [nClasses]string{"request", "indication", "success", "error", ""}

// wireCounts counts every message the interception sees. Safe for
// concurrent use.
type wireCounts struct {
	msgs     [nMethods][nClasses][2][2][nKinds]atomic.Uint64 // method, class, dir, transport, decision
	injected [nCodes]atomic.Uint64                           // injected errors by code-minCode

	// What pion's EventHandler reports (see turnEvents).
	permissions, channels atomic.Int64
}

// count counts one message and the verdict acted on: one atomic add (two
// for an injected error), the header read once.
func (w *wireCounts) count(p *faults.Packet, v *faults.Verdict) {
	m, c := methodOther, nClasses-1
	switch {
	case p.IsSTUN():
		m, c = methodIndex(p.Method()), int(p.Class())
	case p.IsChannelData():
		m = methodChannelData
	}
	k := int(v.Kind)
	if k >= nKinds {
		k = 0
	}
	w.msgs[m][c][p.Dir&1][p.Transport&1][k].Add(1)
	if v.Kind == faults.Error && v.Action != nil {
		if i := v.Action.Code - minCode; i >= 0 && i < nCodes {
			w.injected[i].Add(1)
		}
	}
}

// The method label indexes that are not STUN methods.
const (
	methodChannelData = 7
	methodOther       = 8
)

// methodIndex returns the index into methodNames of a STUN method.
func methodIndex(m faults.Method) int {
	switch m {
	case faults.MethodBinding:
		return 0
	case faults.MethodAllocate:
		return 1
	case faults.MethodRefresh:
		return 2
	case faults.MethodSend:
		return 3
	case faults.MethodData:
		return 4
	case faults.MethodCreatePermission:
		return 5
	case faults.MethodChannelBind:
		return 6
	}
	return methodOther
}

// turnEvents returns h with pion's permission and channel callbacks set to
// keep the gauges of /metrics (pion counts allocations itself, see
// AllocationCount).
func (w *wireCounts) turnEvents(h turn.EventHandler) turn.EventHandler {
	h.OnPermissionCreated = func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ net.IP) { w.permissions.Add(1) }
	h.OnPermissionDeleted = func(_, _ net.Addr, _, _, _ string, _ net.Addr, _ net.IP) { w.permissions.Add(-1) }
	h.OnChannelCreated = func(_, _ net.Addr, _, _, _ string, _, _ net.Addr, _ uint16) { w.channels.Add(1) }
	h.OnChannelDeleted = func(_, _ net.Addr, _, _, _ string, _, _ net.Addr, _ uint16) { w.channels.Add(-1) }
	return h
}

// Descriptions of the metrics the collector makes at scrape time.
var (
	descMessages = prometheus.NewDesc("stunfault_messages_total",
		"STUN, TURN and ChannelData messages seen, by method, class (\"\" for ChannelData), direction, transport and decision (the action taken: pass when nothing fired).",
		[]string{"method", "class", "direction", "transport", "decision"}, nil)
	descRuleMatched = prometheus.NewDesc("stunfault_rule_matched_total",
		"Messages a rule's match held for (reset when the rule is replaced).", []string{"rule"}, nil)
	descRuleFired = prometheus.NewDesc("stunfault_rule_fired_total",
		"Messages a rule acted on.", []string{"rule"}, nil)
	descRuleLetThrough = prometheus.NewDesc("stunfault_rule_let_through_total",
		"Messages a rule matched and let through (after, every, probability, times, ratelimit).", []string{"rule"}, nil)
	descInjected = prometheus.NewDesc("stunfault_injected_errors_total",
		"Error responses stunfault sent in place of pion's answer, by code (rules and the relay guard).", []string{"code"}, nil)
	descAllocations = prometheus.NewDesc("stunfault_turn_allocations",
		"TURN allocations active now.", nil, nil)
	descPermissions = prometheus.NewDesc("stunfault_turn_permissions",
		"TURN permissions active now.", nil, nil)
	descChannels = prometheus.NewDesc("stunfault_turn_channels",
		"TURN channel bindings active now.", nil, nil)
	descWebhookRequests = prometheus.NewDesc("stunfault_webhook_requests_total",
		"Requests to a simulated webhook, by the status answered (0: the client went away first; held requests count once answered).", []string{"webhook", "status"}, nil)
	descWebhookInflight = prometheus.NewDesc("stunfault_webhook_inflight",
		"Requests a webhook holds open now (sync).", []string{"webhook"}, nil)
	descWebhookPending = prometheus.NewDesc("stunfault_webhook_pending",
		"Held requests plus async work in progress (and synthetic load) now.", []string{"webhook"}, nil)
	descDelayDepth = prometheus.NewDesc("stunfault_delay_queue_messages",
		"Delayed messages waiting now.", nil, nil)
	descDelayBytes = prometheus.NewDesc("stunfault_delay_queue_bytes",
		"Bytes of delayed messages waiting now.", nil, nil)
	descDelayOverflows = prometheus.NewDesc("stunfault_delay_overflows_total",
		"Messages a delay rule let through at once because the delay budget was spent.", nil, nil)
	descJournalEntries = prometheus.NewDesc("stunfault_journal_entries",
		"Firings the journal holds now.", nil, nil)
	descJournalFirings = prometheus.NewDesc("stunfault_journal_firings_total",
		"Firings recorded (the journal's latest sequence number).", nil, nil)
	descJournalEvicted = prometheus.NewDesc("stunfault_journal_evicted_total",
		"Firings no longer held: pushed out of the journal (journal_size) or cleared.", nil, nil)
	descEventsLost = prometheus.NewDesc("stunfault_subscriber_events_lost_total",
		"What a bounded subscriber queue dropped because its reader was too slow, by subscriber: events (journal subscriptions: the control socket's subscribe, the dashboard, events -follow), capture (messages the trace overwrote, or whose bytes it dropped, before a live capture wrote them) or trace (messages the trace overwrote before a GET /trace?since=SEQ&follow=1 reader, such as the dashboard, read them).",
		[]string{"subscriber"}, nil)
	descTraceMessages = prometheus.NewDesc("stunfault_trace_messages_total",
		"Messages recorded in the trace (its latest sequence number; 0 when trace_size is 0).", nil, nil)
	descPeerDatagrams = prometheus.NewDesc("stunfault_peer_datagrams_total",
		"Datagrams between relay addresses and peers (the peer leg), by direction (in: peer to relay, out: relay to peer) and decision (the action taken: pass when no peer-leg rule fired).",
		[]string{"direction", "decision"}, nil)
	descPeerBytes = prometheus.NewDesc("stunfault_peer_bytes_total",
		"Bytes of the peer-leg datagrams, by direction and decision as stunfault_peer_datagrams_total.",
		[]string{"direction", "decision"}, nil)
	descPanics = prometheus.NewDesc("stunfault_panics_total",
		"Panics recovered while handling a message (the message passed untouched).", nil, nil)
	descLoopDatagrams = prometheus.NewDesc("stunfault_udp_loop_datagrams_total",
		"Datagrams read from the socket of each read loop of a udp listener ([server].read_loops): how the kernel spreads clients over them.",
		[]string{"listener", "loop"}, nil)
)

// webhookBuckets are the latency histogram's upper bounds, in seconds:
// webhook latencies are configured from milliseconds to minutes.
var webhookBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// webhookLatency is stunfault_webhook_duration_seconds: every webhook
// request is observed as it ends (webhook.Options.Observe), so none is
// missed between two scrapes. The webhooks are fixed by New, so each one's
// histogram is looked up once there; observing allocates nothing.
type webhookLatency struct {
	vec *prometheus.HistogramVec
	by  map[string]prometheus.Observer // read-only after newWebhookLatency
}

func newWebhookLatency(names []string) *webhookLatency {
	l := &webhookLatency{
		vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stunfault_webhook_duration_seconds",
			Help:    "How long webhook requests took: until answered (sync) or until their work finished (async).",
			Buckets: webhookBuckets,
		}, []string{"webhook"}),
		by: make(map[string]prometheus.Observer, len(names)),
	}
	for _, n := range names {
		l.by[n] = l.vec.WithLabelValues(n)
	}
	return l
}

// observe is the Hub's Options.Observe.
func (l *webhookLatency) observe(webhook string, took time.Duration) {
	if o := l.by[webhook]; o != nil {
		o.Observe(took.Seconds())
	}
}

// collector reads the server's counters and state at scrape time: nothing
// on the packet path but wireCounts' atomic adds.
type collector struct {
	s *Server
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descRuleMatched, descRuleFired, descRuleLetThrough,
		descInjected, descAllocations, descPermissions, descChannels, descWebhookRequests,
		descWebhookInflight, descWebhookPending, descDelayDepth, descDelayBytes,
		descDelayOverflows, descJournalEntries, descJournalFirings, descJournalEvicted, descEventsLost,
		descTraceMessages, descPanics, descPeerDatagrams, descPeerBytes, descLoopDatagrams} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s, w := c.s, &c.s.ic.counts
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for m := range nMethods {
		for cl := range nClasses {
			for d := range 2 {
				for t := range 2 {
					for k := range nKinds {
						if n := w.msgs[m][cl][d][t][k].Load(); n > 0 {
							counter(descMessages, float64(n), methodNames[m], classNames[cl],
								faults.Direction(d).String(), faults.Transport(t).String(), faults.ActionKind(k).String())
						}
					}
				}
			}
		}
	}
	for i := range nCodes {
		if n := w.injected[i].Load(); n > 0 {
			counter(descInjected, float64(n), strconv.Itoa(minCode+i))
		}
	}
	for _, r := range s.eng.List() {
		counter(descRuleMatched, float64(r.Matched), r.Rule.ID)
		counter(descRuleFired, float64(r.Fired), r.Rule.ID)
		counter(descRuleLetThrough, float64(r.LetThrough), r.Rule.ID)
	}

	s.mu.Lock()
	ts, udp := s.turn, s.udp
	s.mu.Unlock()
	for _, u := range udp {
		for i, c := range u.loops {
			counter(descLoopDatagrams, float64(c.datagrams.Load()), u.lis.Addr.String(), strconv.Itoa(i))
		}
	}
	if ts != nil {
		gauge(descAllocations, float64(ts.AllocationCount()))
	}
	gauge(descPermissions, float64(w.permissions.Load()))
	gauge(descChannels, float64(w.channels.Load()))

	for name, st := range s.hub.Stats() {
		for status, n := range st.Statuses {
			counter(descWebhookRequests, float64(n), name, strconv.Itoa(status))
		}
		gauge(descWebhookInflight, float64(st.Inflight), name)
		gauge(descWebhookPending, float64(st.Pending), name)
	}

	n, b := s.ic.delays.depth()
	gauge(descDelayDepth, float64(n))
	gauge(descDelayBytes, float64(b))
	counter(descDelayOverflows, float64(s.ic.delayOverflows.Load()))
	counter(descPanics, float64(s.ic.panics.Load()))

	j := s.eng.Journal()
	last, held := j.LastSeq(), j.Len()
	gauge(descJournalEntries, float64(held))
	counter(descJournalFirings, float64(last))
	counter(descJournalEvicted, float64(last-uint64(held)))
	counter(descEventsLost, float64(j.Lost()), "events")
	counter(descEventsLost, float64(s.captureLost.Load()), "capture")
	counter(descEventsLost, float64(s.traceLost.Load()), "trace")
	counter(descTraceMessages, float64(s.ic.trace.LastSeq()))

	peers := s.ic.peers.totals()
	for d := range 2 {
		for k := range nKinds {
			if n := peers.n[d][k]; n > 0 {
				dir, dec := faults.Direction(d).String(), faults.ActionKind(k).String()
				counter(descPeerDatagrams, float64(n), dir, dec)
				counter(descPeerBytes, float64(peers.bytes[d][k]), dir, dec)
			}
		}
	}
}

// depth returns how many delayed messages wait, and their bytes.
func (q *delayQueue) depth() (n, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending), q.bytes
}

// newMetricsHandler returns GET /metrics: the server's collector plus Go's
// and the process's, on a registry of the server's own (never the global
// one, so two servers in one process do not collide).
func (s *Server) newMetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		&collector{s: s},
		s.latency.vec,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
}
