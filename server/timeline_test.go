package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// "10 s outage then recovery", played by a real client's Binding requests
// on a manual clock: the scenario is activated over the control socket and
// each step change arrives as a step event, with no sleeping.
func TestTimedScenarioOutageThenRecovery(t *testing.T) {
	t.Parallel()
	clk := faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
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
	srv := startServer(t, &cfg, server.WithClock(clk))
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	sub, err := c.Subscribe(ctx, control.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
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
		if got := bindingOutcome(t, conn); got != want {
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
	clk.Advance(5 * time.Second)
	step(1)
	binding("at 5s", 403)
	clk.Advance(9 * time.Second)
	binding("at 14s", 403)
	clk.Advance(time.Second)
	step(2)
	binding("at 15s, recovered", 0)
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "outage-403"}); n != 2 {
		t.Errorf("journal: outage-403 fired %d times, want 2", n)
	}
}
