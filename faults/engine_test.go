package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func ptrTo[T any](v T) *T { return &v }

var (
	clientA = netip.MustParseAddrPort("10.0.0.1:5000")
	clientB = netip.MustParseAddrPort("192.168.1.7:6000")
)

// testPackets builds the messages the matcher and action tables use.
type testPackets struct {
	bind, bindSigned, bindBig, alloc, allocSigned, bindSuccessOut, send, cdata, bindTCP *Packet
}

func newTestPackets(tb testing.TB) testPackets {
	tb.Helper()
	in := func(b []byte) *Packet { return &Packet{Data: b, Dir: In, Transport: UDP, Client: clientA} }
	tcp := in(buildSTUN(tb, stun.BindingRequest))
	tcp.Transport = TCP
	return testPackets{
		bind: in(buildSTUN(tb, stun.BindingRequest, stun.NewSoftware("softphone/1.0"))),
		bindSigned: in(buildSTUN(tb, stun.BindingRequest, stun.NewUsername("alice:bob"),
			stun.NewShortTermIntegrity("pw"), stun.Fingerprint)),
		bindBig: in(buildSTUN(tb, stun.BindingRequest, stun.NewSoftware(strings.Repeat("x", 400)))),
		alloc:   in(buildSTUN(tb, stun.NewType(stun.MethodAllocate, stun.ClassRequest))),
		allocSigned: in(buildSTUN(tb, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.NewUsername("user"), stun.NewRealm("stunfault.test"), stun.NewNonce("n"),
			stun.NewLongTermIntegrity("user", "stunfault.test", "pass"))),
		bindSuccessOut: &Packet{Data: buildSTUN(tb, stun.BindingSuccess), Dir: Out, Transport: UDP, Client: clientA},
		send:           in(buildSTUN(tb, stun.NewType(stun.MethodSend, stun.ClassIndication))),
		cdata:          in(channelData([]byte("media"))),
		bindTCP:        tcp,
	}
}

// fresh returns a copy of p with its parse cache cleared.
func fresh(p *Packet) *Packet {
	return &Packet{Data: p.Data, Dir: p.Dir, Transport: p.Transport, Client: p.Client}
}

func dropRule(id string, m Match) Rule {
	return Rule{ID: id, Match: m, Action: Action{Type: "drop"}}
}

// mustAdd adds r or fails the test.
func mustAdd(tb testing.TB, e *Engine, r Rule) Rule {
	tb.Helper()
	ch, err := e.Add(r)
	if err != nil {
		tb.Fatalf("Add(%q): %v", r.ID, err)
	}
	return ch.Rules[0]
}

// fakeSignals is a Signals with fixed answers.
type fakeSignals struct {
	inflight, pending map[string]int
	bodies            map[string]string // name -> body of a held request
}

func (s *fakeSignals) Inflight(name string) int { return s.inflight[name] }
func (s *fakeSignals) Pending(name string) int  { return s.pending[name] }
func (s *fakeSignals) Recent(name string, q WebhookQuery) bool {
	b, ok := s.bodies[name]
	return ok && (q.Body == nil || q.Body.Match([]byte(b))) && len(b) >= q.MinBodyBytes
}

func TestEngineMatchers(t *testing.T) {
	pk := newTestPackets(t)
	sig := &fakeSignals{
		inflight: map[string]int{"crm": 2},
		pending:  map[string]int{"crm": 3, "slow": 1},
		bodies:   map[string]string{"crm": `{"ticket_id": 42}`},
	}
	tests := []struct {
		name  string
		match Match
		p     *Packet
		want  bool
	}{
		{"zero match, binding request", Match{}, pk.bind, true},
		{"zero match, allocate", Match{}, pk.alloc, true},
		{"zero match, send indication", Match{}, pk.send, true},
		{"zero match, not channeldata", Match{}, pk.cdata, false},
		{"zero match, not outbound", Match{}, pk.bindSuccessOut, false},
		{"method binding", Match{Methods: []string{"binding"}}, pk.bind, true},
		{"method binding, allocate", Match{Methods: []string{"binding"}}, pk.alloc, false},
		{"methods list", Match{Methods: []string{"refresh", "allocate"}}, pk.alloc, true},
		{"method channeldata", Match{Methods: []string{"channeldata"}}, pk.cdata, true},
		{"method channeldata, binding", Match{Methods: []string{"channeldata"}}, pk.bind, false},
		{"class request", Match{Classes: []string{"request"}}, pk.bind, true},
		{"class indication, request", Match{Classes: []string{"indication"}}, pk.bind, false},
		{"class indication, send", Match{Classes: []string{"indication"}}, pk.send, true},
		{"class does not exclude channeldata", Match{Methods: []string{"send", "channeldata"}, Classes: []string{"indication"}}, pk.cdata, true},
		{"direction out", Match{Direction: "out", Classes: []string{"success"}}, pk.bindSuccessOut, true},
		{"direction out, inbound", Match{Direction: "out"}, pk.bind, false},
		{"direction in", Match{Direction: "in"}, pk.bind, true},
		{"transport tcp, udp", Match{Transports: []string{"tcp"}}, pk.bind, false},
		{"transport tcp", Match{Transports: []string{"tcp"}}, pk.bindTCP, true},
		{"transport udp, tcp", Match{Transports: []string{"udp"}}, pk.bindTCP, false},
		{"source prefix", Match{Sources: []string{"10.0.0.0/8"}}, pk.bind, true},
		{"source single ip", Match{Sources: []string{"10.0.0.1"}}, pk.bind, true},
		{"source elsewhere", Match{Sources: []string{"192.168.0.0/16", "::1/128"}}, pk.bind, false},
		{"username", Match{Username: "^alice:"}, pk.bindSigned, true},
		{"username mismatch", Match{Username: "^bob"}, pk.bindSigned, false},
		{"username absent", Match{Username: ".*"}, pk.bind, false},
		{"min size", Match{MinSize: 300}, pk.bindBig, true},
		{"min size, small", Match{MinSize: 300}, pk.bind, false},
		{"max size", Match{MaxSize: 100}, pk.bind, true},
		{"max size, big", Match{MaxSize: 100}, pk.bindBig, false},
		{"authenticated", Match{Authenticated: ptrTo(true)}, pk.allocSigned, true},
		{"authenticated, unsigned", Match{Authenticated: ptrTo(true)}, pk.alloc, false},
		{"unauthenticated", Match{Authenticated: ptrTo(false)}, pk.alloc, true},
		{"unauthenticated, signed", Match{Authenticated: ptrTo(false)}, pk.bindSigned, false},
		{"attr present", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE"}}}, pk.bind, true},
		{"attr present by number", Match{Attributes: []AttributeMatch{{Type: "0x8022", Present: ptrTo(true)}}}, pk.bind, true},
		{"attr missing", Match{Attributes: []AttributeMatch{{Type: "REALM"}}}, pk.bind, false},
		{"attr absent", Match{Attributes: []AttributeMatch{{Type: "REALM", Present: ptrTo(false)}}}, pk.bind, true},
		{"attr absent, present", Match{Attributes: []AttributeMatch{{Type: "software", Present: ptrTo(false)}}}, pk.bind, false},
		{"attr contains", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", Contains: "phone"}}}, pk.bind, true},
		{"attr contains, no", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", Contains: "chrome"}}}, pk.bind, false},
		{"attr regex", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", Regex: `/\d\.\d$`}}}, pk.bind, true},
		{"attr min len", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", MinLen: 14}}}, pk.bind, false},
		{"attr max len", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", MaxLen: 13}}}, pk.bind, true},
		{"attrs all must hold", Match{Attributes: []AttributeMatch{{Type: "SOFTWARE"}, {Type: "USERNAME"}}}, pk.bind, false},
		{"webhook inflight", Match{Webhook: &WebhookMatch{Name: "crm", MinInflight: 2}}, pk.bind, true},
		{"webhook inflight too few", Match{Webhook: &WebhookMatch{Name: "crm", MinInflight: 3}}, pk.bind, false},
		{"webhook pending", Match{Webhook: &WebhookMatch{Name: "slow", MinPending: 1}}, pk.bind, true},
		{"webhook body", Match{Webhook: &WebhookMatch{Name: "crm", MinInflight: 1, Body: "ticket_id"}}, pk.bind, true},
		{"webhook body mismatch", Match{Webhook: &WebhookMatch{Name: "crm", MinInflight: 1, Body: "case_id"}}, pk.bind, false},
		{"webhook name only: held now", Match{Webhook: &WebhookMatch{Name: "crm"}}, pk.bind, true},
		{"webhook name only, nothing held", Match{Webhook: &WebhookMatch{Name: "slow"}}, pk.bind, false},
		{"webhook min body bytes", Match{Webhook: &WebhookMatch{Name: "crm", MinBodyBytes: 1000}}, pk.bind, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(EngineOptions{Signals: sig})
			mustAdd(t, e, dropRule("r", tt.match))
			v := e.Decide(fresh(tt.p))
			if got := v.Fired(); got != tt.want {
				t.Fatalf("fired = %v, want %v (verdict %+v)", got, tt.want, v)
			}
			if tt.want && (v.Kind != Drop || v.Rule != "r") {
				t.Errorf("verdict = %+v, want a drop by r", v)
			}
		})
	}
}

func TestEngineWebhookWithoutSignals(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, dropRule("r", Match{Webhook: &WebhookMatch{MinInflight: 0}}))
	if v := e.Decide(fresh(pk.bind)); v.Fired() {
		t.Errorf("verdict = %+v, want pass: no Signals", v)
	}
}

func TestEngineSourcesIPv4Mapped(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, dropRule("r", Match{Sources: []string{"10.0.0.0/8"}}))
	p := &Packet{Data: buildSTUN(t, stun.BindingRequest), Client: netip.MustParseAddrPort("[::ffff:10.1.2.3]:9")}
	if v := e.Decide(p); v.Kind != Drop {
		t.Errorf("verdict = %+v, want drop for an IPv4-mapped client", v)
	}
}

func TestEngineActions(t *testing.T) {
	pk := newTestPackets(t)
	tests := []struct {
		name   string
		match  Match
		action Action
		p      *Packet
		want   Verdict
	}{
		{"error", Match{}, Action{Type: "error", Code: 403, Reason: "Forbidden"}, pk.bind,
			Verdict{Kind: Error, Action: &Action{Type: "error", Code: 403, Reason: "Forbidden", Integrity: "auto"}}},
		{"error 300", Match{}, Action{Type: "error", Code: 300, Alternate: "127.0.0.1:3479", Integrity: "none"}, pk.bind,
			Verdict{Kind: Error, Address: netip.MustParseAddrPort("127.0.0.1:3479"),
				Action: &Action{Type: "error", Code: 300, Alternate: "127.0.0.1:3479", Integrity: "none"}}},
		{"drop", Match{}, Action{Type: "drop"}, pk.bind, Verdict{Kind: Drop, Action: &Action{Type: "drop"}}},
		{"delay", Match{}, Action{Type: "delay", Delay: Duration(150 * time.Millisecond)}, pk.bind,
			Verdict{Kind: Delay, Delay: 150 * time.Millisecond, Action: &Action{Type: "delay", Delay: Duration(150 * time.Millisecond)}}},
		{"duplicate default copies", Match{}, Action{Type: "duplicate"}, pk.bind,
			Verdict{Kind: Duplicate, Action: &Action{Type: "duplicate", Copies: 1}}},
		{"duplicate", Match{}, Action{Type: "duplicate", Copies: 3}, pk.bind,
			Verdict{Kind: Duplicate, Action: &Action{Type: "duplicate", Copies: 3}}},
		{"truncate", Match{}, Action{Type: "truncate", Length: 12}, pk.bind,
			Verdict{Kind: Truncate, Action: &Action{Type: "truncate", Length: 12}}},
		{"corrupt", Match{}, Action{Type: "corrupt", Target: "attribute"}, pk.bind,
			Verdict{Kind: Corrupt, Action: &Action{Type: "corrupt", Target: "attribute", Count: 1}}},
		{"mapped address", Match{Direction: "out", Methods: []string{"binding"}, Classes: []string{"success"}},
			Action{Type: "mapped_address", Address: "203.0.113.7:40000"}, pk.bindSuccessOut,
			Verdict{Kind: MappedAddress, Address: netip.MustParseAddrPort("203.0.113.7:40000"),
				Action: &Action{Type: "mapped_address", Address: "203.0.113.7:40000"}}},
		{"close", Match{Transports: []string{"tcp"}}, Action{Type: "close"}, pk.bindTCP,
			Verdict{Kind: Close, Action: &Action{Type: "close"}}},
		{"pass", Match{}, Action{Type: "pass"}, pk.bind, Verdict{Kind: Pass, Action: &Action{Type: "pass"}}},
		{"ratelimit within burst", Match{}, Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "drop"}}, pk.bind,
			Verdict{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(EngineOptions{})
			mustAdd(t, e, Rule{ID: "r", Match: tt.match, Action: tt.action})
			got := e.Decide(fresh(tt.p))
			if tt.want.Action != nil {
				tt.want.Rule, tt.want.Seq = "r", 1
				if got.Retired == nil {
					t.Error("Decide: Retired is nil for a fired rule")
				}
				got.Retired = nil // a channel of the engine's own
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide = %+v (action %+v), want %+v (action %+v)", got, got.Action, tt.want, tt.want.Action)
			}
		})
	}
}

func TestEngineDelayJitter(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 1})
	mustAdd(t, e, Rule{ID: "r", Action: Action{Type: "delay", Delay: Duration(100 * time.Millisecond), Jitter: Duration(20 * time.Millisecond)}})
	seen := map[time.Duration]bool{}
	for range 200 {
		v := e.Decide(fresh(pk.bind))
		if v.Kind != Delay || v.Delay < 80*time.Millisecond || v.Delay > 120*time.Millisecond {
			t.Fatalf("verdict = %+v, want a delay in [80ms, 120ms]", v)
		}
		seen[v.Delay] = true
	}
	if len(seen) < 10 {
		t.Errorf("%d distinct delays in 200, want jitter to vary them", len(seen))
	}
}

func TestEngineRateLimit(t *testing.T) {
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Clock: clk})
	mustAdd(t, e, Rule{ID: "rl", Action: Action{Type: "ratelimit", Rate: 2, Burst: 3, Then: &Action{Type: "error", Code: 429, Reason: "Too Many"}}})
	decide := func() ActionKind { return e.Decide(fresh(pk.bind)).Kind }
	var got []ActionKind
	for range 5 {
		got = append(got, decide())
	}
	want := []ActionKind{Pass, Pass, Pass, Error, Error}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kinds = %v, want %v", got, want)
	}
	clk.Advance(time.Second) // two tokens
	got = got[:0]
	for range 3 {
		got = append(got, decide())
	}
	if want := []ActionKind{Pass, Pass, Error}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after 1s: kinds = %v, want %v", got, want)
	}
	st, _ := e.Get("rl")
	if st.Matched != 8 || st.Fired != 3 || st.LetThrough != 5 {
		t.Errorf("counters = %d/%d/%d, want matched 8, fired 3, let through 5", st.Matched, st.Fired, st.LetThrough)
	}
	if v := e.Journal().Query(Query{})[0]; v.Action != "error" || v.Code != 429 {
		t.Errorf("journal entry = %+v, want the then action (error 429)", v)
	}
	// ResetCounters refills the bucket; a clock going back takes nothing.
	e.ResetCounters()
	clk.Advance(-time.Minute)
	got = got[:0]
	for range 4 {
		got = append(got, decide())
	}
	if want := []ActionKind{Pass, Pass, Pass, Error}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after ResetCounters: kinds = %v, want %v", got, want)
	}
}

func TestEnginePriorityAndInsertionOrder(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "late", Priority: 5, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "tie-1", Priority: 1, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "tie-2", Priority: 1, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "first", Priority: -1, Match: Match{Methods: []string{"allocate"}}, Action: Action{Type: "drop"}})

	if v := e.Decide(fresh(pk.bind)); v.Rule != "tie-1" {
		t.Errorf("binding fired %q, want tie-1 (lowest priority, inserted first)", v.Rule)
	}
	if v := e.Decide(fresh(pk.alloc)); v.Rule != "first" {
		t.Errorf("allocate fired %q, want first", v.Rule)
	}
	var ids []string
	for _, s := range e.List() {
		ids = append(ids, s.Rule.ID)
	}
	if want := []string{"first", "tie-1", "tie-2", "late"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("List order = %v, want %v", ids, want)
	}
	// Replacing tie-1 keeps its place among equals.
	mustAdd(t, e, Rule{ID: "tie-1", Priority: 1, Action: Action{Type: "error", Code: 403}})
	if v := e.Decide(fresh(pk.bind)); v.Rule != "tie-1" || v.Kind != Error {
		t.Errorf("after replace: %+v, want tie-1 error", v)
	}
	// A disabled rule is skipped.
	if _, err := e.SetEnabled("tie-1", false); err != nil {
		t.Fatal(err)
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "tie-2" {
		t.Errorf("with tie-1 disabled: fired %q, want tie-2", v.Rule)
	}
}

func TestEngineFirstFiringWins(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "skip", After: 1, Action: Action{Type: "error", Code: 403}})
	mustAdd(t, e, Rule{ID: "next", Action: Action{Type: "drop"}})
	if v := e.Decide(fresh(pk.bind)); v.Rule != "next" {
		t.Errorf("first message fired %q, want next (skip let it through)", v.Rule)
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "skip" {
		t.Errorf("second message fired %q, want skip", v.Rule)
	}
}

func TestEngineUpsertResetsCounters(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	r := mustAdd(t, e, Rule{ID: "r", Times: 1, Action: Action{Type: "drop"}})
	e.Decide(fresh(pk.bind))
	e.Decide(fresh(pk.bind))
	st, _ := e.Get("r")
	if st.Matched != 2 || st.Fired != 1 || st.LetThrough != 1 {
		t.Fatalf("counters = %+v, want 2/1/1", st)
	}
	rev := e.Revision()
	mustAdd(t, e, r)
	if e.Revision() != rev+1 {
		t.Errorf("Revision() = %d, want %d", e.Revision(), rev+1)
	}
	st, _ = e.Get("r")
	if st.Matched != 0 || st.Fired != 0 {
		t.Errorf("after replace counters = %+v, want zero", st)
	}
	if v := e.Decide(fresh(pk.bind)); v.Kind != Drop {
		t.Errorf("after replace: %+v, want drop (times reset)", v)
	}
	// SetEnabled keeps counters.
	if _, err := e.SetEnabled("r", false); err != nil {
		t.Fatal(err)
	}
	if st, _ = e.Get("r"); st.Fired != 1 || st.Rule.IsEnabled() {
		t.Errorf("after disable: %+v, want fired 1 and disabled", st)
	}
}

func TestEngineGateOrder(t *testing.T) {
	pk := newTestPackets(t)
	tests := []struct {
		name string
		rule Rule
		want string // one letter per message: F fired, - let through
	}{
		{"after", Rule{After: 2}, "--FFFF"},
		{"every", Rule{Every: 3}, "--F--F--F"},
		{"after then every", Rule{After: 1, Every: 2}, "--F-F-F"},
		{"times", Rule{Times: 2}, "FF----"},
		{"after, every, times", Rule{After: 2, Every: 2, Times: 2}, "---F-F----"},
		{"probability 0", Rule{Probability: ptrTo(0.0)}, "-----"},
		{"probability 1", Rule{Probability: ptrTo(1.0), Times: 3}, "FFF--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(EngineOptions{})
			tt.rule.ID, tt.rule.Action = "r", Action{Type: "drop"}
			mustAdd(t, e, tt.rule)
			var b strings.Builder
			for range len(tt.want) {
				if e.Decide(fresh(pk.bind)).Fired() {
					b.WriteByte('F')
				} else {
					b.WriteByte('-')
				}
			}
			if b.String() != tt.want {
				t.Errorf("firings = %s, want %s", b.String(), tt.want)
			}
			st, _ := e.Get("r")
			if fired := uint64(strings.Count(tt.want, "F")); st.Matched != uint64(len(tt.want)) || st.Fired != fired || st.LetThrough != st.Matched-fired {
				t.Errorf("counters = %d/%d/%d, want %d/%d/%d", st.Matched, st.Fired, st.LetThrough, len(tt.want), fired, uint64(len(tt.want))-fired)
			}
		})
	}
}

// TestEngineProbabilityThenTimes checks that times caps firings, not rolls:
// with probability 0.5 and times 3, exactly 3 fire over many messages.
func TestEngineProbabilityThenTimes(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 7})
	mustAdd(t, e, Rule{ID: "r", Probability: ptrTo(0.5), Times: 3, Action: Action{Type: "drop"}})
	fired := 0
	for range 100 {
		if e.Decide(fresh(pk.bind)).Fired() {
			fired++
		}
	}
	if fired != 3 {
		t.Errorf("fired %d times, want 3", fired)
	}
}

func TestEngineProbabilityRate(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 3})
	mustAdd(t, e, Rule{ID: "r", Probability: ptrTo(0.25), Action: Action{Type: "drop"}})
	fired := 0
	for range 4000 {
		if e.Decide(fresh(pk.bind)).Fired() {
			fired++
		}
	}
	if fired < 850 || fired > 1150 {
		t.Errorf("fired %d of 4000 at p=0.25, want about 1000", fired)
	}
}

func TestEngineForExpires(t *testing.T) {
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Clock: clk})
	mustAdd(t, e, Rule{ID: "r", For: Duration(time.Minute), Action: Action{Type: "drop"}})
	if v := e.Decide(fresh(pk.bind)); !v.Fired() {
		t.Fatalf("before expiry: %+v, want drop", v)
	}
	clk.Advance(59 * time.Second)
	if v := e.Decide(fresh(pk.bind)); !v.Fired() {
		t.Fatalf("at 59s: %+v, want drop", v)
	}
	clk.Advance(time.Second)
	if v := e.Decide(fresh(pk.bind)); v.Fired() {
		t.Fatalf("at 60s: %+v, want pass (expired)", v)
	}
	st, _ := e.Get("r")
	if !st.Expired || !st.Expires.Equal(clk.Now()) || st.Matched != 2 {
		t.Errorf("status = %+v, want expired at now, matched 2", st)
	}
	// Re-adding restarts the lifetime.
	mustAdd(t, e, Rule{ID: "r", For: Duration(time.Minute), Action: Action{Type: "drop"}})
	if v := e.Decide(fresh(pk.bind)); !v.Fired() {
		t.Errorf("after re-adding: %+v, want drop", v)
	}
}

func TestEngineTransmission(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "retransmit", Match: Match{Transmission: 2}, Action: Action{Type: "error", Code: 403}})
	a := buildSTUN(t, stun.BindingRequest)
	b := buildSTUN(t, stun.BindingRequest)
	seq := []struct {
		data   []byte
		client netip.AddrPort
		want   bool
	}{
		{a, clientA, false}, // first send
		{a, clientA, true},  // first retransmit
		{a, clientB, false}, // same id, other client
		{b, clientA, false},
		{a, clientA, false}, // third copy
		{b, clientA, true},
		{a, clientB, true},
	}
	for i, s := range seq {
		v := e.Decide(&Packet{Data: s.data, Client: s.client})
		if v.Fired() != s.want {
			t.Errorf("message %d: fired = %v, want %v", i, v.Fired(), s.want)
		}
	}
}

func TestEngineTransmissionNotTrackedWithoutRule(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, dropRule("r", Match{Methods: []string{"allocate"}}))
	e.Decide(&Packet{Data: buildSTUN(t, stun.BindingRequest), Client: clientA})
	if e.tx.Load() != nil {
		t.Error("transmission tracker made although no rule uses transmission")
	}
}

func TestEngineMachine(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	// First allocate: 401-like challenge moves to "challenged"; the next
	// one fails with 403 once and moves to "done".
	mustAdd(t, e, Rule{ID: "a", Machine: "m", RequiresState: "started", SetsState: "challenged", Action: Action{Type: "error", Code: 401}})
	mustAdd(t, e, Rule{ID: "b", Machine: "m", RequiresState: "challenged", SetsState: "done", Action: Action{Type: "error", Code: 403}})
	var codes []int
	for range 3 {
		v := e.Decide(fresh(pk.alloc))
		code := 0
		if v.Action != nil {
			code = v.Action.Code
		}
		codes = append(codes, code)
	}
	if want := []int{401, 403, 0}; !reflect.DeepEqual(codes, want) {
		t.Errorf("codes = %v, want %v", codes, want)
	}
	if got := e.MachineStates(); !reflect.DeepEqual(got, map[string]string{"m": "done"}) {
		t.Errorf("MachineStates() = %v, want m: done", got)
	}
	if err := e.SetMachineState("m", "challenged"); err != nil {
		t.Fatal(err)
	}
	if v := e.Decide(fresh(pk.alloc)); v.Rule != "b" {
		t.Errorf("after SetMachineState: fired %q, want b", v.Rule)
	}
	e.ResetMachines()
	if got := e.MachineStates()["m"]; got != "started" {
		t.Errorf("after ResetMachines: %q, want started", got)
	}
	// A state that does not hold is not a match.
	if st, _ := e.Get("b"); st.Matched != 2 {
		t.Errorf("b matched %d, want 2 (only in state challenged)", st.Matched)
	}
	if err := e.SetMachineState("", "x"); err == nil {
		t.Error("SetMachineState with an empty machine: no error")
	}
}

func TestEngineMachineOneShotUnderConcurrency(t *testing.T) {
	pk := newTestPackets(t)
	for round := range 20 {
		e := NewEngine(EngineOptions{})
		// Two rules race for the same transition; each could fire alone.
		mustAdd(t, e, Rule{ID: "x", Machine: "m", RequiresState: "started", SetsState: "fired", Action: Action{Type: "drop"}})
		mustAdd(t, e, Rule{ID: "y", Machine: "m", RequiresState: "started", SetsState: "fired", Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "drop"}})
		var fired atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 16 {
			wg.Go(func() {
				<-start
				for range 50 {
					if e.Decide(fresh(pk.bind)).Fired() {
						fired.Add(1)
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if n := fired.Load(); n != 1 {
			t.Fatalf("round %d: one-shot transition fired %d times, want 1", round, n)
		}
		if n := e.Journal().Count(Query{}); n != 1 {
			t.Fatalf("round %d: journal has %d entries, want 1", round, n)
		}
	}
}

func TestEngineTimesUnderConcurrency(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "r", Times: 5, Action: Action{Type: "drop"}})
	var fired atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if e.Decide(fresh(pk.bind)).Fired() {
					fired.Add(1)
				}
			}
		})
	}
	wg.Wait()
	st, _ := e.Get("r")
	if fired.Load() != 5 || st.Fired != 5 || st.Matched != 800 || st.LetThrough != 795 {
		t.Errorf("fired %d, counters %d/%d/%d; want 5 and 800/5/795", fired.Load(), st.Matched, st.Fired, st.LetThrough)
	}
}

func TestEngineConcurrentChanges(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 1})
	sub := e.Subscribe(16, Query{})
	defer sub.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				e.Decide(fresh(pk.bind))
				e.Decide(fresh(pk.alloc))
				e.Decide(fresh(pk.cdata))
			}
		})
	}
	for i := range 300 {
		id := fmt.Sprintf("r%d", i%7)
		switch i % 5 {
		case 0, 1:
			mustAdd(t, e, Rule{ID: id, Probability: ptrTo(0.5), Labels: map[string]string{"n": id}, Action: Action{Type: "drop"}})
		case 2:
			_, _ = e.Remove(id)
		case 3:
			e.RemoveByLabels(map[string]string{"n": id})
		case 4:
			_, _ = e.SetEnabled(id, i%2 == 0)
			_ = e.List()
		}
	}
	close(stop)
	wg.Wait()
	if e.Revision() == 0 {
		t.Error("Revision() = 0 after changes")
	}
}

func TestEngineAddErrors(t *testing.T) {
	e := NewEngine(EngineOptions{})
	_, err := e.Add(Rule{ID: "bad", Match: Match{Methods: []string{"bindng"}}, Action: Action{Type: "drop"}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "match.methods[0]" {
		t.Fatalf("Add error = %v, want a FieldError on match.methods[0]", err)
	}
	if !strings.HasPrefix(err.Error(), `faults: rule "bad": `) {
		t.Errorf("error = %q, want it prefixed with the rule", err)
	}
	if e.Revision() != 0 || len(e.List()) != 0 {
		t.Errorf("a rejected rule changed the engine")
	}
}

func TestEngineGeneratedIDs(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "rule-2", Action: Action{Type: "drop"}})
	var ids []string
	for range 3 {
		ids = append(ids, mustAdd(t, e, Rule{Action: Action{Type: "drop"}}).ID)
	}
	if want := []string{"rule-1", "rule-3", "rule-4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("generated IDs = %v, want %v", ids, want)
	}
}

func TestEngineAddCopiesRule(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	r := Rule{ID: "r", Labels: map[string]string{"a": "1"}, Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "drop"}}
	mustAdd(t, e, r)
	r.Labels["a"] = "2"
	r.Match.Methods[0] = "allocate"
	if v := e.Decide(fresh(pk.bind)); !v.Fired() {
		t.Error("changing the caller's rule changed the engine's")
	}
	if st, _ := e.Get("r"); st.Rule.Labels["a"] != "1" {
		t.Errorf("labels = %v, want a=1", st.Rule.Labels)
	}
}

func TestEngineRemove(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "a", Labels: map[string]string{"test": "x", "k": "1"}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "b", Labels: map[string]string{"test": "x"}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "c", Labels: map[string]string{"test": "y"}, Action: Action{Type: "drop"}})
	if _, err := e.Remove("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove(nope) = %v, want ErrNotFound", err)
	}
	if _, err := e.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	if _, err := e.SetEnabled("nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetEnabled(nope) = %v, want ErrNotFound", err)
	}
	if got := len(e.ListByLabels(map[string]string{"test": "x"})); got != 2 {
		t.Errorf("ListByLabels(test=x) = %d rules, want 2", got)
	}
	if n := len(e.RemoveByLabels(nil).Removed); n != 0 {
		t.Errorf("RemoveByLabels(nil) = %d, want 0", n)
	}
	if n := len(e.RemoveByLabels(map[string]string{"test": "x"}).Removed); n != 2 {
		t.Errorf("RemoveByLabels(test=x) = %d, want 2", n)
	}
	if _, err := e.Remove("c"); err != nil {
		t.Errorf("Remove(c) = %v", err)
	}
	mustAdd(t, e, Rule{ID: "d", Action: Action{Type: "drop"}})
	e.Clear()
	if n := len(e.List()); n != 0 {
		t.Errorf("after Clear: %d rules", n)
	}
}

func TestEngineReplace(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "old", Action: Action{Type: "drop"}})
	_, err := e.Replace([]Rule{
		{ID: "ok", Action: Action{Type: "drop"}},
		{ID: "bad", Match: Match{Classes: []string{"requst"}}, Action: Action{Type: "drop"}},
		{ID: "ok", Action: Action{Type: "drop"}},
	})
	fields := []string{}
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if want := []string{"rules[1].match.classes[0]", "rules[2].id"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("Replace error fields = %v, want %v (error %v)", fields, want, err)
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "old" {
		t.Fatalf("a failed Replace changed the rules: fired %q", v.Rule)
	}
	if _, err := e.Replace([]Rule{{ID: "new", Action: Action{Type: "error", Code: 403}}, {Action: Action{Type: "drop"}}}); err != nil {
		t.Fatal(err)
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "new" {
		t.Errorf("after Replace fired %q, want new", v.Rule)
	}
	if n := len(e.List()); n != 2 {
		t.Errorf("after Replace: %d rules, want 2", n)
	}
}

func TestEngineScenarios(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	err := e.SetScenarios(map[string]Scenario{
		"broken": {Rules: []Rule{{ID: "x", Action: Action{Type: "error", Code: 999}}}},
	})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "scenarios.broken.rules[0].action.code" {
		t.Fatalf("SetScenarios error = %v, want one on scenarios.broken.rules[0].action.code", err)
	}
	if err := e.SetScenarios(map[string]Scenario{
		"forbidden": {Rules: []Rule{{ID: "f", Action: Action{Type: "error", Code: 403}}}},
		"lossy":     {Rules: []Rule{{ID: "l", Action: Action{Type: "drop"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.Scenarios(); !reflect.DeepEqual(got, []string{"forbidden", "lossy"}) {
		t.Errorf("Scenarios() = %v", got)
	}
	if _, err := e.ActivateScenario("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ActivateScenario(nope) = %v, want ErrNotFound", err)
	}
	for _, name := range []string{"forbidden", "lossy", "forbidden"} {
		if _, err := e.ActivateScenario(name); err != nil {
			t.Fatal(err)
		}
		if e.Scenario() != name {
			t.Errorf("Scenario() = %q, want %q", e.Scenario(), name)
		}
		if got := len(e.List()); got != 1 {
			t.Errorf("%s: %d rules active, want 1", name, got)
		}
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "f" {
		t.Errorf("fired %q, want f", v.Rule)
	}
	e.Clear()
	if e.Scenario() != "" {
		t.Errorf("after Clear Scenario() = %q, want empty", e.Scenario())
	}
}

// decisionLog runs a fixed message sequence through a fresh engine and
// returns the journal.
func decisionLog(t *testing.T, seed uint64) []Entry {
	t.Helper()
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Seed: seed, Clock: clk})
	mustAdd(t, e, Rule{ID: "p", Probability: ptrTo(0.3), Action: Action{Type: "delay", Delay: Duration(time.Second), Jitter: Duration(500 * time.Millisecond)}})
	mustAdd(t, e, Rule{ID: "q", Probability: ptrTo(0.5), Match: Match{Methods: []string{"allocate"}}, Action: Action{Type: "drop"}})
	msgs := []*Packet{pk.bind, pk.alloc, pk.cdata, pk.bindSigned}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		clk.Advance(time.Millisecond)
		e.Decide(fresh(msgs[rng.IntN(len(msgs))]))
	}
	return e.Journal().Query(Query{})
}

func TestEngineDeterminism(t *testing.T) {
	a, b := decisionLog(t, 42), decisionLog(t, 42)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed: journals differ (%d and %d entries)", len(a), len(b))
	}
	c := decisionLog(t, 43)
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave identical journals")
	}
}

func TestEngineDecideNonSTUN(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "all", Match: Match{Methods: []string{"binding", "channeldata"}}, Action: Action{Type: "drop"}})
	for _, d := range [][]byte{nil, {0x80, 0, 0, 0}, []byte("GET / HTTP/1.1\r\n\r\n")} {
		if v := e.Decide(&Packet{Data: d}); v.Fired() {
			t.Errorf("Decide(%q) = %+v, want pass", d, v)
		}
	}
}

func TestEngineDecideNoMatchDoesNotAllocate(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
	for i, m := range benchMatches() {
		mustAdd(t, e, dropRule(fmt.Sprint(i), m))
	}
	mustAdd(t, e, dropRule("tx", Match{Transmission: 1000}))
	p := &Packet{}
	n := testing.AllocsPerRun(200, func() {
		*p = Packet{Data: pk.bindSigned.Data, Client: clientA}
		if v := e.Decide(p); v.Fired() {
			t.Fatalf("fired %q", v.Rule)
		}
	})
	if n != 0 {
		t.Errorf("allocs per Decide = %v, want 0", n)
	}
}

// benchMatches returns rule matches that a signed Binding request from
// clientA does not meet, some failing on the header, some later.
func benchMatches() []Match {
	return []Match{
		{Methods: []string{"allocate"}},
		{Sources: []string{"192.168.0.0/16"}},
		{Username: "^carol"},
		{Methods: []string{"binding"}, MinSize: 1000},
		{Direction: "out"},
		{Attributes: []AttributeMatch{{Type: "SOFTWARE", Contains: "x"}}},
		{Transports: []string{"tcp"}},
		{Methods: []string{"binding"}, Webhook: &WebhookMatch{MinInflight: 1, Body: "ticket"}},
		{Classes: []string{"indication"}},
		{Authenticated: ptrTo(false)},
	}
}

// A rule's regular expressions are compiled once, when the rule is added:
// every later snapshot it is part of (another rule added, the rule disabled
// and enabled again) shares those compiled patterns, as do concurrent
// Decide calls. Only replacing the rule compiles them anew.
func TestCompiledRegexpsAreShared(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
	r := Rule{ID: "r", Match: Match{
		Username:   "^alice:b+",
		Attributes: []AttributeMatch{{Type: "USERNAME", Regex: "o+"}},
		Webhook:    &WebhookMatch{Body: "ticket"},
	}, Action: Action{Type: "drop"}}
	mustAdd(t, e, r)
	patterns := func() []*Pattern {
		t.Helper()
		s := e.snap.Load()
		i := find(s.rules, "r")
		if i < 0 {
			t.Fatal("rule r not in the snapshot")
		}
		var out []*Pattern
		for _, c := range s.rules[i].m.conds {
			switch c.kind {
			case condUsername:
				out = append(out, c.pattern)
			case condAttribute:
				out = append(out, c.attr.regex)
			case condWebhook:
				out = append(out, c.webhook.q.Body)
			}
		}
		return out
	}
	first := patterns()
	var exprs []string
	for _, re := range first {
		exprs = append(exprs, re.String())
	}
	if want := []string{"^alice:b+", "o+", "ticket"}; !reflect.DeepEqual(exprs, want) {
		t.Fatalf("compiled patterns %q, want %q", exprs, want)
	}

	mustAdd(t, e, Rule{ID: "other", Action: Action{Type: "drop"}})
	if _, err := e.SetEnabled("r", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SetEnabled("r", true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				e.Decide(fresh(pk.bindSigned)) // runs the username and attribute patterns of r
			}
		})
	}
	wg.Wait()
	for i, re := range patterns() {
		if re != first[i] {
			t.Errorf("pattern %q was compiled again by a later snapshot", re)
		}
	}
	if st, _ := e.Get("r"); st.Matched != 0 {
		t.Errorf("r matched %d messages with no webhook request held, want 0", st.Matched)
	}

	mustAdd(t, e, r) // a replacement is a new rule: compiled anew
	for i, re := range patterns() {
		if re == first[i] {
			t.Errorf("pattern %q survived replacing the rule", re)
		}
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		expr, s string
		want    bool
	}{
		{"ticket_id", `{"ticket_id":1}`, true},
		{"ticket_id", `{"case":1}`, false},
		{"^alice:", "alice:bob", true},
		{"^alice:", "bob:alice:", false},
		{"^alice:", "bob", false},
		{"a+b", "xaab", true},
		{"(?i)ABC", "xabc", true},
		{"", "anything", true},
		{"^$", "", true},
		{"^$", "x", false},
		{"^carol", "carol:1", true},
		{"^carol", "x:carol", false},
		{"^ab+c", "abbbc-d", true},
		{"^ab+c", "ab-c", false},
		{"(?i)^ABC", "abcd", true},
		{"(?m)^b", "a\nb", true},
		{"^a|b", "xb", true},
	}
	for _, tt := range tests {
		p, err := CompilePattern(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Match([]byte(tt.s)), regexp.MustCompile(tt.expr).MatchString(tt.s); got != tt.want || got != want {
			t.Errorf("pattern %q on %q = %v, want %v", tt.expr, tt.s, got, tt.want)
		}
	}
}

func TestEngineRevisionCountsControlChangesOnly(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	steps := []struct {
		name string
		do   func()
		bump bool
	}{
		{"add", func() { mustAdd(t, e, Rule{ID: "r", Machine: "m", SetsState: "x", Action: Action{Type: "drop"}}) }, true},
		{"decide", func() { e.Decide(fresh(pk.bind)) }, false},
		{"reset counters", e.ResetCounters, false},
		{"set machine state", func() { _ = e.SetMachineState("m", "y") }, false},
		{"reset machines", e.ResetMachines, false},
		{"journal clear", e.Journal().Clear, false},
		{"disable", func() { _, _ = e.SetEnabled("r", false) }, true},
		{"remove missing", func() { _, _ = e.Remove("nope") }, false},
		{"remove by labels, none", func() { e.RemoveByLabels(map[string]string{"a": "b"}) }, false},
		{"replace", func() { _, _ = e.Replace(nil) }, true},
		{"clear", func() { e.Clear() }, true},
	}
	for _, s := range steps {
		before := e.Revision()
		s.do()
		if got := e.Revision() - before; got != map[bool]uint64{true: 1, false: 0}[s.bump] {
			t.Errorf("%s: revision moved by %d", s.name, got)
		}
	}
}

func TestEngineResetCounters(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "r", Times: 1, Action: Action{Type: "drop"}})
	e.Decide(fresh(pk.bind))
	e.Decide(fresh(pk.bind))
	e.ResetCounters()
	if st, _ := e.Get("r"); st.Matched != 0 || st.Fired != 0 || st.LetThrough != 0 {
		t.Errorf("after ResetCounters: %+v", st)
	}
	if v := e.Decide(fresh(pk.bind)); !v.Fired() {
		t.Error("times not reset by ResetCounters")
	}
}

func TestEngineMachineSetsWithoutRequirement(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "arm", Machine: "m", SetsState: "armed", Match: Match{Methods: []string{"allocate"}}, Action: Action{Type: "pass"}})
	mustAdd(t, e, Rule{ID: "fail", Machine: "m", RequiresState: "armed", Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "error", Code: 403}})
	if v := e.Decide(fresh(pk.bind)); v.Fired() {
		t.Fatalf("binding before arming: %+v, want pass", v)
	}
	if v := e.Decide(fresh(pk.alloc)); v.Rule != "arm" || v.Kind != Pass {
		t.Fatalf("allocate: %+v, want arm (pass)", v)
	}
	for range 2 { // requires without sets: stays armed
		if v := e.Decide(fresh(pk.bind)); v.Rule != "fail" {
			t.Fatalf("binding after arming: %+v, want fail", v)
		}
	}
}
