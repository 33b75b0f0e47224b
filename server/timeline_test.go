package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// "10 s outage then recovery", played by a real client, pion's stun.Client
// over UDP and TCP, on a manual clock moved by Go (ManualClock.Advance) or
// over the control socket (clock.advance on [server] clock = "manual", as
// a test in another language would): the scenario is activated over the
// control socket and each step change arrives as a step event, with no
// sleeping. What pion's client reports: a Binding error response with
// ERROR-CODE 403 during the outage (not a transaction error), a success
// before and after.
func TestTimedScenarioOutageThenRecovery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		transport string
		control   bool // clock.advance, not ManualClock.Advance
	}{{"udp", false}, {"tcp", false}, {"udp", true}} {
		name := tt.transport
		if tt.control {
			name += "/clock.advance"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testOutageThenRecovery(t, tt.transport, tt.control)
		})
	}
}

func testOutageThenRecovery(t *testing.T, transport string, viaControl bool) {
	cfg := testConfig()
	cfg.Scenarios = map[string]config.Scenario{
		"outage": {
			Description: "10 s of 403 on Binding, then recovery",
			Steps: []faults.Step{
				{At: 0},
				{At: faults.Duration(5 * time.Second), Rules: []faults.Rule{{ID: "outage-403",
					Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}}}},
				{At: faults.Duration(15 * time.Second)},
			},
		},
	}
	var opts []server.Option
	if viaControl {
		cfg.Server.Clock = "manual"
	} else {
		opts = append(opts, server.WithClock(faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))))
	}
	srv := startServer(t, &cfg, opts...)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	advance := func(d time.Duration) {
		t.Helper()
		if !viaControl {
			srv.Clock().(*faults.ManualClock).Advance(d)
			return
		}
		if _, err := c.AdvanceClock(ctx, d); err != nil {
			t.Fatalf("clock.advance %v: %v", d, err)
		}
	}
	sub, err := c.Subscribe(ctx, control.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// A 1 s RTO: no retransmission reaches the rule twice (the journal
	// counts each firing), and the manual clock does not drive pion's.
	nc, err := net.Dial(transport, turnAddr(t, srv, transport))
	if err != nil {
		t.Fatal(err)
	}
	var conn stun.Connection = nc
	if transport == "tcp" {
		conn = stunStream{turn.NewSTUNConn(nc)} // one Read, one message (helpers_test.go)
	}
	client, err := stun.NewClient(conn, stun.WithRTO(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	step := func(want int) {
		t.Helper()
		for ev := range sub.C {
			if ev.Event != control.EventStep {
				continue
			}
			if ev.Step == nil || ev.Step.Scenario != "outage" || ev.Step.Index != want {
				t.Fatalf("step event %+v, want step %d of outage", ev.Step, want)
			}
			return
		}
		t.Fatalf("subscription ended before step %d", want)
	}
	binding := func(when string, want int) {
		t.Helper()
		m, err := stunBinding(t, client)
		if err != nil {
			t.Fatalf("%s: Binding: %v, want an answer", when, err)
		}
		if got := errorCode(t, m); got != want {
			t.Fatalf("%s: Binding got code %d, want %d", when, got, want)
		}
	}

	if _, err := c.ActivateScenario(ctx, "outage"); err != nil {
		t.Fatal(err)
	}
	step(0)
	binding("at 0s", 0)
	sc, err := c.Scenarios(ctx)
	if err != nil || sc.Step == nil || sc.Step.Index != 0 || sc.Step.NextIn.D() != 5*time.Second {
		t.Fatalf("scenarios.list = %+v (step %+v), %v; want step 0, next in 5s", sc, sc.Step, err)
	}
	advance(5 * time.Second)
	step(1)
	binding("at 5s", 403)
	advance(9 * time.Second)
	binding("at 14s", 403)
	advance(time.Second)
	step(2)
	binding("at 15s, recovered", 0)
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "outage-403"}); n != 2 {
		t.Errorf("journal: outage-403 fired %d times, want 2", n)
	}
}
