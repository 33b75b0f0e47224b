package server_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// TestRulesChangeWhileTrafficFlows: rules that never match the traffic are
// added, replaced and removed while four clients send Bindings one at a
// time; every Binding is answered. Run it with -race.
func TestRulesChangeWhileTrafficFlows(t *testing.T) {
	t.Parallel()
	const (
		clients  = 4
		requests = 200
		tries    = 3 // sends of one transaction before it counts as lost
		maxChurn = 20000
	)
	srv := startServer(t, nil)
	eng := srv.Faults()

	// Rules that match only Allocate, or only a source no client uses.
	churnRule := func(i int) faults.Rule {
		id := fmt.Sprintf("churn-%d", i%8)
		switch i % 3 {
		case 0:
			return faults.Rule{ID: id, Match: faults.Match{Methods: []string{"allocate"}}, Action: faults.Action{Type: "drop"}}
		case 1:
			return faults.Rule{ID: id, Match: faults.Match{Sources: []string{"127.0.0.99/32"}}, Action: faults.Action{Type: "error", Code: 403}}
		}
		return faults.Rule{
			ID:     id,
			Match:  faults.Match{Sources: []string{"127.0.0.99/32"}, Transports: []string{"tcp"}},
			Action: faults.Action{Type: "close"},
		}
	}
	done := make(chan struct{})
	churned := make(chan int, 1)
	go func() {
		i := 0
		defer func() { churned <- i }()
		for ; i < maxChurn; i++ {
			select {
			case <-done:
				return
			default:
			}
			var err error
			switch i % 4 {
			case 0, 1: // add, or replace by id
				_, err = eng.Add(churnRule(i))
			case 2:
				if _, err = eng.Remove(fmt.Sprintf("churn-%d", (i-1)%8)); errors.Is(err, faults.ErrNotFound) {
					err = nil
				}
			case 3:
				_, err = eng.Replace([]faults.Rule{churnRule(i), churnRule(i + 1)})
			}
			if err != nil {
				t.Errorf("churn %d: %v", i, err)
				return
			}
		}
	}()

	var lost, answered atomic.Int64
	var wg sync.WaitGroup
	for k := range clients {
		c := dialRaw(t, srv, transports[k%2], "127.0.0.1")
		wg.Go(func() {
			for range requests {
				req := bindingRequest()
				ok, err := pacedBinding(c, req, tries)
				switch {
				case err != nil:
					t.Errorf("%s client: %v", c.transport, err)
					return
				case ok:
					answered.Add(1)
				default:
					lost.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	n := <-churned
	t.Logf("%d Bindings answered, %d lost, %d rule changes (revision %d)", answered.Load(), lost.Load(), n, eng.Revision())
	if l := lost.Load(); l != 0 {
		t.Errorf("%d of %d Bindings lost while rules changed", l, clients*requests)
	}
	if n < 10 {
		t.Errorf("only %d rule changes overlapped the traffic", n)
	}
	if fired := srv.Faults().Journal().LastSeq(); fired != 0 {
		t.Errorf("%d rule firings, want none: the churned rules must not match", fired)
	}
}

// pacedBinding sends req up to tries times, waiting for its answer after
// each send, and reports whether a Binding success came. It skips answers
// to earlier sends. An error is a wrong answer, or the connection ending.
func pacedBinding(c *rawClient, req *stun.Message, tries int) (bool, error) {
	for range tries {
		if _, err := c.conn.Write(req.Raw); err != nil {
			return false, err
		}
		for {
			b, err := c.next(500 * time.Millisecond)
			if err != nil {
				var ne interface{ Timeout() bool }
				if errors.As(err, &ne) && ne.Timeout() && len(b) == 0 {
					break // retransmit
				}
				return false, err
			}
			m := &stun.Message{Raw: b}
			if err := m.Decode(); err != nil {
				return false, fmt.Errorf("answer does not decode: %w", err)
			}
			if m.TransactionID != req.TransactionID {
				continue // a late answer to an earlier send
			}
			if m.Type != stun.BindingSuccess {
				return false, fmt.Errorf("got %s, want a Binding success", m.Type)
			}
			return true, nil
		}
	}
	return false, nil
}
