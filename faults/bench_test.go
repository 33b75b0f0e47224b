package faults

import (
	"fmt"
	"testing"
)

// BenchmarkDecide measures Decide on a signed Binding request that no rule
// fires on: the packet path's cost when stunfault only watches. The rules
// (benchMatches) are a deliberately hard mix: most pass the header check
// and fail later, on sources, username, size, attributes or the webhook.
func BenchmarkDecide(b *testing.B) {
	pk := newTestPackets(b)
	matches := benchMatches()
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
			for i := range n {
				mustAdd(b, e, dropRule(fmt.Sprint(i), matches[i%len(matches)]))
			}
			p := &Packet{}
			b.ReportAllocs()
			for b.Loop() {
				*p = Packet{Data: pk.bindSigned.Data, Client: clientA}
				if e.Decide(p).Fired() {
					b.Fatal("fired")
				}
			}
		})
	}
}

// BenchmarkDecideByHeader is BenchmarkDecide with rules that differ from
// the message in their header conditions only (method, class, direction,
// transport): the common case of rules aimed at other traffic.
func BenchmarkDecideByHeader(b *testing.B) {
	pk := newTestPackets(b)
	matches := []Match{
		{Methods: []string{"allocate"}},
		{Methods: []string{"refresh", "createpermission"}},
		{Classes: []string{"indication"}},
		{Direction: "out", Classes: []string{"success"}},
		{Transports: []string{"tcp"}},
		{Methods: []string{"channeldata"}},
	}
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			e := NewEngine(EngineOptions{})
			for i := range n {
				mustAdd(b, e, dropRule(fmt.Sprint(i), matches[i%len(matches)]))
			}
			p := &Packet{}
			b.ReportAllocs()
			for b.Loop() {
				*p = Packet{Data: pk.bindSigned.Data, Client: clientA}
				if e.Decide(p).Fired() {
					b.Fatal("fired")
				}
			}
		})
	}
}

// BenchmarkDecideFire measures a firing: counters, verdict and journal. The
// querier=journal variant runs journal reads (Count and Query over a full
// journal) in a loop on another goroutine meanwhile: a reader must not slow
// the firing path down (target: within 1.2x of querier=none). On a busy
// machine the second goroutine also takes CPU time away: querier=busy runs
// a loop of the same shape that does not touch the journal, to tell the
// two apart.
func BenchmarkDecideFire(b *testing.B) {
	for _, querier := range []string{"none", "journal", "busy"} {
		b.Run("querier="+querier, func(b *testing.B) {
			pk := newTestPackets(b)
			e := NewEngine(EngineOptions{JournalSize: 1000})
			mustAdd(b, e, Rule{ID: "r", Labels: map[string]string{"test": "bench"}, Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "error", Code: 403}})
			p := &Packet{}
			for range 1000 { // a full journal for the querier to read
				*p = Packet{Data: pk.bind.Data, Client: clientA}
				e.Decide(p)
			}
			stop, done := make(chan struct{}), make(chan struct{})
			switch querier {
			case "journal":
				go func() {
					defer close(done)
					j := e.Journal()
					for {
						select {
						case <-stop:
							return
						default:
						}
						j.Count(Query{Labels: map[string]string{"test": "bench"}})
						j.Query(Query{Rule: "r", Limit: 10})
					}
				}()
			case "busy":
				go func() {
					defer close(done)
					other := newJournal(1000)
					for range 1000 {
						other.record(Entry{Rule: "r", Labels: map[string]string{"test": "bench"}})
					}
					for {
						select {
						case <-stop:
							return
						default:
						}
						other.Count(Query{Labels: map[string]string{"test": "bench"}})
						other.Query(Query{Rule: "r", Limit: 10})
					}
				}()
			default:
				close(done)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				*p = Packet{Data: pk.bind.Data, Client: clientA}
				if !e.Decide(p).Fired() {
					b.Fatal("did not fire")
				}
			}
			b.StopTimer()
			close(stop)
			<-done
		})
	}
}

// BenchmarkDecideParallel measures Decide from many goroutines at once.
func BenchmarkDecideParallel(b *testing.B) {
	pk := newTestPackets(b)
	matches := benchMatches()
	e := NewEngine(EngineOptions{Signals: &fakeSignals{}})
	for i := range 100 {
		mustAdd(b, e, dropRule(fmt.Sprint(i), matches[i%len(matches)]))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		p := &Packet{}
		for pb.Next() {
			*p = Packet{Data: pk.bindSigned.Data, Client: clientA}
			e.Decide(p)
		}
	})
}
