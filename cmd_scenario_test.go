package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// `stunfault scenario` shows a running timed scenario's step and the time
// to the next, as the server's (manual) clock moves.
func TestCLIScenarioSteps(t *testing.T) {
	clk := faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	srv := servertest.New(t, servertest.WithServerOptions(server.WithClock(clk)))
	eng, url := srv.Faults(), srv.ControlURL()
	err := eng.SetScenarios(map[string]faults.Scenario{"outage": {Steps: []faults.Step{
		{At: 0},
		{At: faults.Duration(5 * time.Second), Rules: []faults.Rule{{ID: "o403", Action: faults.Action{Type: "error", Code: 403}}}},
		{At: faults.Duration(15 * time.Second)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "scenario", "-control", url, "outage"); err != nil || !strings.Contains(out, "activated outage") {
		t.Fatalf("scenario outage: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		advance time.Duration
		want    string
	}{
		{0, "* outage  step 0 of 3, next in 5s"},
		{7 * time.Second, "* outage  step 1 of 3, next in 8s"},
		{8 * time.Second, "* outage  step 2 of 3, the last"},
	} {
		clk.Advance(tt.advance)
		if out, err := runCmd(t, "scenario", "-control", url); err != nil || !strings.Contains(out, tt.want) {
			t.Errorf("after +%s: scenario: %v\n%q, want %q", tt.advance, err, out, tt.want)
		}
	}
	out, err := runCmd(t, "journal", "-control", url)
	if err != nil || !strings.Contains(out, "outage:step[2]/3") {
		t.Errorf("journal: %v\n%s, want the step entries", err, out)
	}
}

// `stunfault clock advance` moves a manual clock, and the system clock
// refuses with the key to set.
func TestCLIClock(t *testing.T) {
	clk := faults.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	srv := servertest.New(t, servertest.WithServerOptions(server.WithClock(clk)))
	url := srv.ControlURL()
	if out, err := runCmd(t, "clock", "-control", url); err != nil || !strings.Contains(out, "2026-01-02T03:04:05Z (manual clock, 0 timers pending)") {
		t.Errorf("clock: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "clock", "-control", url, "advance", "90s"); err != nil || !strings.Contains(out, "2026-01-02T03:05:35Z") {
		t.Errorf("clock advance 90s: %v\n%s", err, out)
	}
	if !clk.Now().Equal(time.Date(2026, 1, 2, 3, 5, 35, 0, time.UTC)) {
		t.Errorf("clock at %s after advance 90s", clk.Now())
	}
	if _, err := runCmd(t, "clock", "-control", url, "advance", "-5s"); exitCode(err) != 2 {
		t.Errorf("clock advance -5s: exit %d (%v), want 2", exitCode(err), err)
	}
	sys := servertest.New(t)
	out, err := runCmd(t, "clock", "-control", sys.ControlURL(), "advance", "1s")
	if exitCode(err) != 2 || !strings.Contains(out+err.Error(), `clock = "manual"`) {
		t.Errorf("clock advance on the system clock: exit %d, %v\n%s", exitCode(err), err, out)
	}
}
