package faults

import "testing"

// Journal.Lost counts the events every subscription dropped, closed ones
// included.
func TestJournalLostCountsEverySubscription(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 1})
	mustAdd(t, e, dropRule("r", Match{Methods: []string{"binding"}}))
	a, b := e.Subscribe(1, Query{}), e.Subscribe(2, Query{})
	for range 3 {
		e.Decide(fresh(pk.bind))
	}
	a.Close()
	b.Close()
	if a.Lost() != 2 || b.Lost() != 1 {
		t.Fatalf("subscriptions lost %d and %d, want 2 and 1", a.Lost(), b.Lost())
	}
	if got := e.Journal().Lost(); got != 3 {
		t.Fatalf("Journal.Lost: got %d, want 3", got)
	}
}
