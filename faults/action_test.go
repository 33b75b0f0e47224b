package faults

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// actionSamples holds one valid rule per action type, with the match it
// needs. TestActionRegistry fails when a registered type has none, so a new
// action type comes with its sample (and server/effect_test.go's).
var actionSamples = map[string]Rule{
	"error":     {Action: Action{Type: "error", Code: 403, Reason: "Forbidden"}},
	"drop":      {Action: Action{Type: "drop"}},
	"delay":     {Action: Action{Type: "delay", Delay: Duration(time.Second), Jitter: Duration(time.Millisecond)}},
	"duplicate": {Action: Action{Type: "duplicate", Copies: 2}},
	"truncate":  {Action: Action{Type: "truncate", Length: 20}},
	"corrupt":   {Action: Action{Type: "corrupt", Target: "attribute"}},
	"mapped_address": {
		Match:  Match{Direction: "out", Methods: []string{"binding"}, Classes: []string{"success"}},
		Action: Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
	},
	"close":     {Match: Match{Transports: []string{"tcp"}}, Action: Action{Type: "close"}},
	"ratelimit": {Action: Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "drop"}}},
	"pass":      {Action: Action{Type: "pass"}},
}

// TestActionRegistry walks every registered action type: each has a name and
// kind of its own, is documented in the README's tables, validates and
// compiles with its sample, and rejects the parameters of other types.
func TestActionRegistry(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names, kinds := map[string]bool{}, map[ActionKind]string{}
	for _, at := range actionTypes {
		sp := at.spec()
		t.Run(sp.name, func(t *testing.T) {
			if names[sp.name] {
				t.Fatalf("name %q registered twice", sp.name)
			}
			names[sp.name] = true
			if sp.kind != rateLimited {
				if other, dup := kinds[sp.kind]; dup {
					t.Errorf("kind %d is both %s and %s", sp.kind, other, sp.name)
				}
				kinds[sp.kind] = sp.name
				if got := sp.kind.String(); got != sp.name {
					t.Errorf("%d.String() = %q, want %q", sp.kind, got, sp.name)
				}
			}
			if n := strings.Count(string(readme), "| `"+sp.name+"` |"); n < 2 {
				t.Errorf("README.md has %d table rows for %s, want 2 (actions, and the [rules.action] reference)", n, sp.name)
			}
			r, ok := actionSamples[sp.name]
			if !ok {
				t.Fatalf("no sample rule for %s in actionSamples", sp.name)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("sample %+v: Validate() = %v", r.Action, err)
			}
			if _, err := compile(r); err != nil {
				t.Fatalf("sample: compile = %v", err)
			}
			e := NewEngine(EngineOptions{})
			if _, err := e.Add(r); err != nil {
				t.Fatalf("sample: Engine.Add = %v", err)
			}
			// Every parameter that is not this type's is refused, by name.
			for _, p := range []struct {
				name string
				set  func(*Action)
			}{
				{"code", func(a *Action) { a.Code = 403 }},
				{"copies", func(a *Action) { a.Copies = 2 }},
				{"address", func(a *Action) { a.Address = "1.2.3.4:5" }},
				{"delay", func(a *Action) { a.Delay = Duration(time.Second) }},
			} {
				if strings.Contains(strings.Join(sp.params, ","), p.name) {
					continue
				}
				bad := r.Clone()
				p.set(&bad.Action)
				if !hasFieldError(bad.Validate(), "action."+p.name, "not a parameter of "+sp.name) {
					t.Errorf("with %s set: Validate() = %v, want action.%s: not a parameter of %s", p.name, bad.Validate(), p.name, sp.name)
				}
			}
		})
	}
	for k := range NumKinds {
		if ActionKind(k).String() == "unknown" {
			t.Errorf("ActionKind %d < NumKinds has no name", k)
		}
	}
	if got := ActionKind(NumKinds).String(); got != "unknown" {
		t.Errorf("ActionKind(NumKinds) = %q, want unknown: NumKinds is too small", got)
	}
	if got := Kinds(); strings.Join(got, ",") != strings.Join(actionNames, ",") {
		t.Errorf("Kinds() = %v, want %v", got, actionNames)
	}
}

// TestActionBounds checks every rule-action number's documented range with
// the exact bad inputs: each is refused by Validate, and so by Engine.Add,
// the control socket and config check, which all call it.
func TestActionBounds(t *testing.T) {
	d := func(s string) Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return Duration(v)
	}
	tests := []struct {
		name  string
		rule  Rule
		field string
		msg   string
	}{
		{"jitter 1281024h", Rule{Action: Action{Type: "delay", Delay: d("1s"), Jitter: d("1281024h")}}, "action.jitter", "between 0 and 1h0m0s"},
		{"jitter over 1h", Rule{Action: Action{Type: "delay", Delay: d("1s"), Jitter: d("1h0m0.001s")}}, "action.jitter", "between 0 and 1h0m0s"},
		{"delay 2h", Rule{Action: Action{Type: "delay", Delay: d("2h")}}, "action.delay", "at most 1h0m0s"},
		{"delay max int64", Rule{Action: Action{Type: "delay", Delay: Duration(math.MaxInt64)}}, "action.delay", "at most 1h0m0s"},
		{"copies 1000000", Rule{Action: Action{Type: "duplicate", Copies: 1000000}}, "action.copies", "between 0 and 100"},
		{"copies 101", Rule{Action: Action{Type: "duplicate", Copies: 101}}, "action.copies", "between 0 and 100"},
		{"truncate length 65556", Rule{Action: Action{Type: "truncate", Length: 65556}}, "action.length", "between 0 and 65555"},
		{"corrupt count 1<<40", Rule{Action: Action{Type: "corrupt", Target: "header", Count: 1 << 40}}, "action.count", "between 0 and 65555"},
		{"ratelimit rate 1e7", Rule{Action: Action{Type: "ratelimit", Rate: 1e7, Burst: 1, Then: &Action{Type: "drop"}}}, "action.rate", "at most 1e+06"},
		{"ratelimit rate +Inf", Rule{Action: Action{Type: "ratelimit", Rate: math.Inf(1), Burst: 1, Then: &Action{Type: "drop"}}}, "action.rate", "at most 1e+06"},
		{"ratelimit rate NaN", Rule{Action: Action{Type: "ratelimit", Rate: math.NaN(), Burst: 1, Then: &Action{Type: "drop"}}}, "action.rate", "greater than 0"},
		{"ratelimit burst 2000000", Rule{Action: Action{Type: "ratelimit", Rate: 1, Burst: 2000000, Then: &Action{Type: "drop"}}}, "action.burst", "between 1 and 1000000"},
		{"ratelimit then delay 2h", Rule{Action: Action{Type: "ratelimit", Rate: 1, Burst: 1, Then: &Action{Type: "delay", Delay: d("2h")}}}, "action.then.delay", "at most 1h0m0s"},
		{"error reason 764 bytes", Rule{Action: Action{Type: "error", Code: 403, Reason: strings.Repeat("x", 764)}}, "action.reason", "at most 763 bytes"},
		{"probability 1.5", Rule{Probability: vref(1.5), Action: Action{Type: "drop"}}, "probability", "between 0 and 1"},
		{"probability -0.1", Rule{Probability: vref(-0.1), Action: Action{Type: "drop"}}, "probability", "between 0 and 1"},
		{"probability NaN", Rule{Probability: vref(math.NaN()), Action: Action{Type: "drop"}}, "probability", "between 0 and 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.rule.Validate(); !hasFieldError(err, tt.field, tt.msg) {
				t.Errorf("Validate() = %v, want %s: ...%s...", err, tt.field, tt.msg)
			}
			e := NewEngine(EngineOptions{})
			if _, err := e.Add(tt.rule); !hasFieldError(err, tt.field, tt.msg) {
				t.Errorf("Engine.Add = %v, want %s: ...%s...", err, tt.field, tt.msg)
			}
			if n := len(e.List()); n != 0 {
				t.Errorf("after a refused Add the engine holds %d rules", n)
			}
		})
	}
}

// TestDelayAtTheBounds decides on delay rules at the largest delay and
// jitter: no overflow, and the delay stays within [0, delay+jitter].
func TestDelayAtTheBounds(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Seed: 1})
	mustAdd(t, e, Rule{Action: Action{Type: "delay", Delay: Duration(MaxDelay), Jitter: Duration(MaxDelay)}})
	for range 100 {
		v := e.Decide(fresh(pk.bind))
		if v.Kind != Delay || v.Delay < 0 || v.Delay > 2*MaxDelay {
			t.Fatalf("Decide = %v after %v, want delay within [0, 2h]", v.Kind, v.Delay)
		}
	}
}

// hasFieldError reports whether err holds a FieldError at field whose
// message contains msg.
func hasFieldError(err error, field, msg string) bool {
	for _, fe := range FieldErrors(err) {
		if fe.Field == field && strings.Contains(fe.Msg, msg) {
			return true
		}
	}
	return false
}

// roomFor is a Holder with room for n messages.
type roomFor struct{ n int }

func (r *roomFor) Hold(int) bool {
	if r.n == 0 {
		return false
	}
	r.n--
	return true
}

// TestDelayOverflow: a delay the Holder has no room for passes as
// DelayOverflow, journaled as such and not as delay.
func TestDelayOverflow(t *testing.T) {
	pk := newTestPackets(t)
	e := NewEngine(EngineOptions{Holder: &roomFor{n: 1}})
	mustAdd(t, e, Rule{ID: "slow", Action: Action{Type: "delay", Delay: Duration(time.Second)}})
	if v := e.Decide(fresh(pk.bind)); v.Kind != Delay || v.Delay != time.Second {
		t.Fatalf("first Decide = %v %v, want delay 1s", v.Kind, v.Delay)
	}
	v := e.Decide(fresh(pk.bind))
	if v.Kind != DelayOverflow || v.Rule != "slow" || v.Delay != 0 {
		t.Fatalf("second Decide = %v %q %v, want delay_overflow of slow", v.Kind, v.Rule, v.Delay)
	}
	var actions []string
	for _, en := range e.Journal().Query(Query{Rule: "slow"}) {
		actions = append(actions, en.Action)
	}
	if strings.Join(actions, ",") != "delay,delay_overflow" {
		t.Errorf("journal actions = %v, want [delay delay_overflow]", actions)
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[*Action]string{
		{Type: "error", Code: 403, Reason: "Forbidden"}:                      "error 403 Forbidden",
		{Type: "error", Code: 500}:                                           "error 500",
		{Type: "delay", Delay: Duration(2 * time.Second)}:                    "delay 2s",
		{Type: "ratelimit", Rate: 10, Burst: 1, Then: &Action{Type: "drop"}}: "ratelimit 10/s then drop",
		{Type: "duplicate", Copies: 3}:                                       "duplicate",
		{Type: "nonsense"}:                                                   "nonsense",
	} {
		if got := a.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", *a, got, want)
		}
	}
}

// TestFiringAllocatesNothing: deciding on a message a rule of each action
// type fires on allocates nothing (the journal's chunks aside, one per 128
// firings).
func TestFiringAllocatesNothing(t *testing.T) {
	pk := newTestPackets(t)
	for name, r := range actionSamples {
		t.Run(name, func(t *testing.T) {
			r := r.Clone()
			r.Match = Match{} // any inbound message on any transport
			if name == "mapped_address" || name == "close" {
				t.Skip("needs an outbound or TCP message; same code path")
			}
			e := NewEngine(EngineOptions{})
			mustAdd(t, e, r)
			p := &Packet{}
			decide := func() {
				*p = Packet{Data: pk.bind.Data, Client: clientA}
				e.Decide(p)
			}
			decide()
			if n := testing.AllocsPerRun(100, decide); n != 0 {
				t.Errorf("%v allocations per firing, want 0", n)
			}
		})
	}
}
