package faults

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/pion/stun/v4"
)

func TestJournalRingBounds(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{JournalSize: 5})
	mustAdd(t, e, Rule{ID: "r", Action: Action{Type: "drop"}})
	for range 12 {
		e.Decide(fresh(pk.bind))
	}
	j := e.Journal()
	got := j.Query(Query{})
	var seqs []uint64
	for _, en := range got {
		seqs = append(seqs, en.Seq)
	}
	if want := []uint64{8, 9, 10, 11, 12}; !reflect.DeepEqual(seqs, want) {
		t.Errorf("seqs = %v, want %v", seqs, want)
	}
	if j.Len() != 5 || j.LastSeq() != 12 {
		t.Errorf("Len, LastSeq = %d, %d; want 5, 12", j.Len(), j.LastSeq())
	}
	j.Clear()
	if j.Len() != 0 || j.Count(Query{}) != 0 {
		t.Errorf("after Clear: Len %d", j.Len())
	}
	if v := e.Decide(fresh(pk.bind)); v.Seq != 13 {
		t.Errorf("after Clear: Seq = %d, want 13 (sequence numbers keep increasing)", v.Seq)
	}
}

func TestJournalDisabled(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{JournalSize: -1})
	mustAdd(t, e, Rule{ID: "r", Action: Action{Type: "drop"}})
	sub := e.Subscribe(4, Query{})
	defer sub.Close()
	if v := e.Decide(fresh(pk.bind)); v.Seq != 1 {
		t.Errorf("Seq = %d, want 1", v.Seq)
	}
	if n := e.Journal().Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
	if ev := <-sub.C; ev.Seq != 1 {
		t.Errorf("event Seq = %d, want 1", ev.Seq)
	}
}

func TestJournalEntry(t *testing.T) {
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Clock: clk, Seed: 99})
	mustAdd(t, e, Rule{ID: "screenpop-403", Labels: map[string]string{"test": "t1"}, Action: Action{Type: "error", Code: 403, Reason: "Forbidden"}})
	v := e.Decide(fresh(pk.bind))
	got := e.Journal().Query(Query{})
	want := []Entry{{
		Seq: v.Seq, Time: clk.Now(), Rule: "screenpop-403", Action: "error", Code: 403,
		Method: "binding", Class: "request", Transport: "udp", Direction: "in",
		Client: clientA, Size: len(pk.bind.Data), Labels: map[string]string{"test": "t1"}, Seed: 99,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %+v, want %+v", got, want)
	}
}

func TestJournalQuery(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "bind", Labels: map[string]string{"test": "a"}, Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "error", Code: 403}})
	mustAdd(t, e, Rule{ID: "alloc", Labels: map[string]string{"test": "b"}, Match: Match{Methods: []string{"allocate"}}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "cd", Match: Match{Methods: []string{"channeldata"}, Transports: []string{"udp"}}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "tcp", Priority: -1, Match: Match{Transports: []string{"tcp"}}, Action: Action{Type: "close"}})
	fromB := &Packet{Data: buildSTUN(t, stun.BindingRequest), Client: clientB}
	for _, p := range []*Packet{pk.bind, pk.alloc, pk.cdata, pk.bindTCP, fromB, pk.bind} {
		if !e.Decide(fresh(p)).Fired() {
			t.Fatalf("setup: %v did not fire", p.methodName())
		}
	}
	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"all", Query{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"rule", Query{Rule: "bind"}, []uint64{1, 5, 6}},
		{"method", Query{Method: "allocate"}, []uint64{2}},
		{"class", Query{Class: "request"}, []uint64{1, 2, 4, 5, 6}},
		{"transport", Query{Transport: "tcp"}, []uint64{4}},
		{"direction", Query{Direction: "out"}, nil},
		{"client addr port", Query{Client: clientB.String()}, []uint64{5}},
		{"client addr", Query{Client: "10.0.0.1"}, []uint64{1, 2, 3, 4, 6}},
		{"client prefix", Query{Client: "192.168.0.0/16"}, []uint64{5}},
		{"client bad", Query{Client: "not-an-address"}, nil},
		{"labels", Query{Labels: map[string]string{"test": "a"}}, []uint64{1, 5, 6}},
		{"labels none", Query{Labels: map[string]string{"test": "z"}}, nil},
		{"since", Query{SinceSeq: 4}, []uint64{5, 6}},
		{"limit", Query{Limit: 2}, []uint64{1, 2}},
		{"since and limit", Query{SinceSeq: 1, Limit: 2, Rule: "bind"}, []uint64{5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			for _, en := range e.Journal().Query(tt.q) {
				got = append(got, en.Seq)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Query seqs = %v, want %v", got, tt.want)
			}
			wantCount := len(tt.want)
			if tt.q.Limit > 0 {
				tt.q.Limit = 0
				wantCount = len(e.Journal().Query(tt.q))
			}
			if n := e.Journal().Count(tt.q); n != wantCount {
				t.Errorf("Count = %d, want %d", n, wantCount)
			}
		})
	}
	// Query returns copies: changing them leaves the journal alone.
	got := e.Journal().Query(Query{Rule: "bind"})
	got[0].Labels["test"] = "changed"
	if n := e.Journal().Count(Query{Labels: map[string]string{"test": "a"}}); n != 3 {
		t.Errorf("after changing a returned entry: Count = %d, want 3", n)
	}
}

func TestSubscriptionFilterAndOrder(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "bind", Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "drop"}})
	mustAdd(t, e, Rule{ID: "other", Action: Action{Type: "drop"}})
	all := e.Subscribe(100, Query{})
	binds := e.Subscribe(100, Query{Rule: "bind"})
	for range 10 {
		e.Decide(fresh(pk.bind))
		e.Decide(fresh(pk.alloc))
	}
	all.Close()
	binds.Close()
	all.Close() // idempotent
	var last uint64
	n := 0
	for ev := range all.C {
		if ev.Seq <= last {
			t.Fatalf("event seq %d after %d: want strictly increasing", ev.Seq, last)
		}
		last = ev.Seq
		n++
	}
	if n != 20 {
		t.Errorf("all: %d events, want 20", n)
	}
	n = 0
	for ev := range binds.C {
		if ev.Rule != "bind" {
			t.Errorf("filtered subscription got rule %q", ev.Rule)
		}
		n++
	}
	if n != 10 || all.Lost() != 0 || binds.Lost() != 0 {
		t.Errorf("binds: %d events, lost %d/%d; want 10, 0/0", n, all.Lost(), binds.Lost())
	}
	// After Close, firings go on without the subscription.
	e.Decide(fresh(pk.bind))
}

func TestSubscriptionSlowLoses(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "r", Action: Action{Type: "drop"}})
	sub := e.Subscribe(3, Query{})
	defer sub.Close()
	for range 10 {
		e.Decide(fresh(pk.bind)) // nobody reads: must not block
	}
	if got := sub.Lost(); got != 7 {
		t.Errorf("Lost() = %d, want 7", got)
	}
	for i := range uint64(3) {
		if ev := <-sub.C; ev.Seq != i+1 {
			t.Errorf("event %d has Seq %d, want %d", i, ev.Seq, i+1)
		}
	}
	e.Decide(fresh(pk.bind))
	if ev := <-sub.C; ev.Seq != 11 {
		t.Errorf("next event Seq = %d, want 11", ev.Seq)
	}
}

func TestQueryClientIPv4Mapped(t *testing.T) {
	f := newQueryFilter(Query{Client: "10.0.0.0/8"})
	en := &Entry{Client: netip.MustParseAddrPort("[::ffff:10.0.0.1]:5")}
	if !f.match(en) {
		t.Error("an IPv4-mapped client does not match its IPv4 prefix")
	}
}
