package faults

import (
	"strings"
	"testing"
	"time"
)

// outage is the timed scenario: nothing for 5 s, 403 on Binding for
// 10 s, then recovery.
func outage(repeat time.Duration) Scenario {
	return Scenario{
		Description: "10 s of 403 on Binding, then recovery",
		Steps: []Step{
			{At: 0},
			{At: Duration(5 * time.Second), Rules: []Rule{{ID: "outage-403", Match: Match{Methods: []string{"binding"}}, Action: Action{Type: "error", Code: 403}}}},
			{At: Duration(15 * time.Second)},
		},
		Repeat: Duration(repeat),
	}
}

func TestTimedScenario(t *testing.T) {
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Clock: clk})
	if err := e.SetScenarios(map[string]Scenario{"outage": outage(0)}); err != nil {
		t.Fatal(err)
	}
	sub := e.Subscribe(16, Query{})
	defer sub.Close()
	start := clk.Now()
	if _, err := e.ActivateScenario("outage"); err != nil {
		t.Fatal(err)
	}
	step := func(want int, next time.Duration) {
		t.Helper()
		ev := <-sub.C
		for ev.Action != "step" && ev.Rule != "" { // a firing
			ev = <-sub.C
		}
		if ev.Action != "step" || ev.Step == nil || ev.Step.Index != want || ev.Step.Scenario != "outage" || ev.Rule != "" {
			t.Fatalf("event %+v (step %+v), want step %d of outage", ev, ev.Step, want)
		}
		st, ok := e.ScenarioStep()
		if !ok || st.Index != want || st.Steps != 3 || st.NextIn.D() != next {
			t.Fatalf("ScenarioStep() = %+v, %v; want step %d, next in %s", st, ok, want, next)
		}
	}
	binding := func(want string) {
		t.Helper()
		if v := e.Decide(fresh(pk.bind)); v.Rule != want {
			t.Fatalf("at +%s Binding fired %q, want %q", clk.Now().Sub(start), v.Rule, want)
		}
	}
	step(0, 5*time.Second)
	binding("")
	clk.Advance(4 * time.Second)
	binding("")
	clk.Advance(time.Second)
	step(1, 10*time.Second)
	binding("outage-403")
	binding("outage-403")
	clk.Advance(10 * time.Second)
	step(2, 0)
	binding("")
	if e.Scenario() != "outage" {
		t.Errorf("Scenario() = %q, want outage", e.Scenario())
	}
	if n := clk.Pending(); n != 0 {
		t.Errorf("%d timers pending after the last step, want 0", n)
	}
	if n := e.Journal().Count(Query{Rule: "outage-403"}); n != 2 {
		t.Errorf("journal has %d firings of outage-403, want 2", n)
	}
	st, _ := e.ScenarioStep()
	if !st.Next.IsZero() || !st.Started.Equal(start.Add(15*time.Second)) {
		t.Errorf("last step %+v: want no Next, Started at +15s", st)
	}

	// Replace ends the timeline.
	if _, err := e.ActivateScenario("outage"); err != nil {
		t.Fatal(err)
	}
	<-sub.C
	if _, err := e.Replace(nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.ScenarioStep(); ok {
		t.Error("ScenarioStep() reports a timeline after Replace")
	}
	clk.Advance(time.Minute)
	binding("")
	select {
	case ev := <-sub.C:
		t.Errorf("event %+v after Replace, want none", ev)
	default:
	}
}

func TestTimedScenarioRepeatAndJump(t *testing.T) {
	pk := newTestPackets(t)
	clk := newFakeClock()
	e := NewEngine(EngineOptions{Clock: clk})
	if err := e.SetScenarios(map[string]Scenario{"outage": outage(20 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ActivateScenario("outage"); err != nil {
		t.Fatal(err)
	}
	// One jump over steps 1, 2 and the start of cycle 1: lands in step 1 of cycle 1.
	clk.Advance(26 * time.Second)
	st, ok := e.ScenarioStep()
	if !ok || st.Index != 1 || st.Cycle != 1 || st.NextIn.D() != 9*time.Second {
		t.Fatalf("after +26s ScenarioStep() = %+v, want step 1 of cycle 1, next in 9s", st)
	}
	if v := e.Decide(fresh(pk.bind)); v.Rule != "outage-403" {
		t.Fatalf("Binding fired %q, want outage-403", v.Rule)
	}
	clk.Advance(9 * time.Second)
	clk.Advance(5 * time.Second)
	if st, _ := e.ScenarioStep(); st.Index != 0 || st.Cycle != 2 {
		t.Fatalf("after +40s ScenarioStep() = %+v, want step 0 of cycle 2", st)
	}
	if n := e.Journal().Count(Query{}); n != 5 { // steps: 0, (jump) 1, 2, 0, and the firing
		t.Errorf("journal has %d entries, want 5", n)
	}
}

func TestScenarioValidateShape(t *testing.T) {
	s := func(d time.Duration) Duration { return Duration(d * time.Second) }
	tests := []struct {
		name  string
		sc    Scenario
		field string
		msg   string
	}{
		{"empty steps", Scenario{Steps: []Step{}}, "steps", "must not be empty"},
		{"first not at 0", Scenario{Steps: []Step{{At: s(1)}}}, "steps[0].at", `want "0s"`},
		{"out of order", Scenario{Steps: []Step{{}, {At: s(5)}, {At: s(5)}}}, "steps[2].at", "step out of order"},
		{"negative", Scenario{Steps: []Step{{}, {At: s(-1)}}}, "steps[1].at", "negative offset"},
		{"both", Scenario{Rules: []Rule{}, Steps: []Step{{}}}, "rules", "not both"},
		{"repeat without steps", Scenario{Repeat: s(5)}, "repeat", "only a timed scenario"},
		{"repeat too short", Scenario{Steps: []Step{{}, {At: s(5)}}, Repeat: s(5)}, "repeat", "not after the last step"},
		{"negative repeat", Scenario{Steps: []Step{{}}, Repeat: s(-5)}, "repeat", "negative period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fes := FieldErrors(tt.sc.ValidateShape())
			if len(fes) != 1 || fes[0].Field != tt.field || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Fatalf("ValidateShape() = %v, want one error on %s containing %q", fes, tt.field, tt.msg)
			}
		})
	}
	if err := outage(20 * time.Second).ValidateShape(); err != nil {
		t.Errorf("outage: %v", err)
	}
	e := NewEngine(EngineOptions{})
	err := e.SetScenarios(map[string]Scenario{"o": {Steps: []Step{{}, {At: s(1), Rules: []Rule{{Action: Action{Type: "error", Code: 999}}}}}}})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "scenarios.o.steps[1].rules[0].action.code" {
		t.Errorf("SetScenarios error = %v, want one on scenarios.o.steps[1].rules[0].action.code", err)
	}
}
