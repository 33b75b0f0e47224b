package server_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

func dialControl(t *testing.T, url string) *control.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("control.Dial(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bindingOutcome sends one Binding over conn and returns the response's
// error code (0 for a success), retrying the same transaction up to 3 times
// before calling it lost.
func bindingOutcome(t *testing.T, conn net.Conn) int {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	for range 3 {
		if _, err := conn.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := conn.Read(buf)
			if err != nil {
				break // retransmit
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.TransactionID != req.TransactionID {
				continue // a late answer to an earlier transaction
			}
			return errorCode(t, m)
		}
	}
	t.Fatal("Binding lost after 3 transmissions")
	return -1
}

// The control socket's promise: once a mutating reply arrives, the very
// next message is decided by the new rules. No sleeps in between.
func TestControlRuleAppliesToTheVeryNextMessage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			conn, err := net.Dial(transport, turnAddr(t, srv, transport))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			id := "armed-" + transport
			if got := bindingOutcome(t, conn); got != 0 {
				t.Fatalf("before any rule: code %d, want success", got)
			}
			rule, rev, err := c.AddRule(ctx, faults.Rule{
				ID:     id,
				Match:  faults.Match{Methods: []string{"binding"}, Transports: []string{transport}},
				Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
			})
			if err != nil || rule.ID != id || rev == 0 {
				t.Fatalf("AddRule = %+v, %d, %v", rule, rev, err)
			}
			if got := bindingOutcome(t, conn); got != 403 {
				t.Errorf("right after rules.add: code %d, want 403", got)
			}
			if _, err := c.DisableRule(ctx, id); err != nil {
				t.Fatal(err)
			}
			if got := bindingOutcome(t, conn); got != 0 {
				t.Errorf("right after rules.disable: code %d, want success", got)
			}
			if _, err := c.EnableRule(ctx, id); err != nil {
				t.Fatal(err)
			}
			if got := bindingOutcome(t, conn); got != 403 {
				t.Errorf("right after rules.enable: code %d, want 403", got)
			}
			if _, err := c.RemoveRule(ctx, id); err != nil {
				t.Fatal(err)
			}
			if got := bindingOutcome(t, conn); got != 0 {
				t.Errorf("right after rules.remove: code %d, want success", got)
			}
		})
	}
}

// Many control clients change rules while Bindings flow: revisions in each
// client's replies only go up, no pass-through Binding is lost, and the
// decision events arrive in sequence order.
func TestControlManyClientsWhileTrafficFlows(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	ctx := context.Background()
	watcher := dialControl(t, srv.ControlURL())
	sub, err := watcher.Subscribe(ctx, control.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialControl(t, srv.ControlURL())
			var last uint64
			for j := range 25 {
				// Rules for clients that do not exist: they must never
				// change what the real traffic gets.
				_, rev, err := c.AddRule(ctx, faults.Rule{
					ID:     fmt.Sprintf("c%d-r%d", i, j%3),
					Match:  faults.Match{Methods: []string{"binding"}, Sources: []string{"127.0.0.99/32"}},
					Action: faults.Action{Type: "drop"},
				})
				if err != nil {
					t.Errorf("AddRule: %v", err)
					return
				}
				if rev <= last {
					t.Errorf("client %d: revision %d after %d", i, rev, last)
				}
				last = rev
			}
		}()
	}
	// A rule that fires on every Binding with "pass": each one is
	// journaled and evented, and none is changed.
	if _, _, err := watcher.AddRule(ctx, faults.Rule{
		ID: "observe", Priority: -1,
		Match:  faults.Match{Methods: []string{"binding"}, Sources: []string{"127.0.0.1/32"}},
		Action: faults.Action{Type: "pass"},
	}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const bindings = 100
	for range bindings {
		if got := bindingOutcome(t, conn); got != 0 {
			t.Fatalf("pass-through Binding got code %d", got)
		}
	}
	wg.Wait()

	var seen, lastSeq uint64
	timeout := time.After(10 * time.Second)
	for seen+sub.Lost() < bindings {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription closed after %d events", seen)
			}
			if ev.Seq <= lastSeq {
				t.Fatalf("event seq %d after %d", ev.Seq, lastSeq)
			}
			lastSeq = ev.Seq
			if ev.Rule == "observe" {
				seen++
			}
		case <-timeout:
			t.Fatalf("saw %d events and %d lost, want %d", seen, sub.Lost(), bindings)
		}
	}
}
