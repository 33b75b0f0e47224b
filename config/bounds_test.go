package config

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// TestRuleActionBounds: config check refuses, with the line and the field,
// the rule-action numbers faults.Rule.Validate bounds (the same check as the
// control socket and Engine.Add), from the exact inputs that used to pass.
func TestRuleActionBounds(t *testing.T) {
	tests := []struct {
		name   string
		action string
		field  string
		msg    string
	}{
		{"jitter 1281024h", `action = { type = "delay", delay = "1s", jitter = "1281024h" }`, "rules[0].action.jitter", "between 0 and 1h0m0s"},
		{"delay 2h", `action = { type = "delay", delay = "2h" }`, "rules[0].action.delay", "at most 1h0m0s"},
		{"copies 1000000", `action = { type = "duplicate", copies = 1000000 }`, "rules[0].action.copies", "between 0 and 100"},
		{"truncate length 100000", `action = { type = "truncate", length = 100000 }`, "rules[0].action.length", "between 0 and 65555"},
		{"corrupt count 100000", `action = { type = "corrupt", target = "header", count = 100000 }`, "rules[0].action.count", "between 0 and 65555"},
		{"ratelimit rate 1e9", `action = { type = "ratelimit", rate = 1e9, burst = 1, then = { type = "drop" } }`, "rules[0].action.rate", "at most 1e+06"},
		{"ratelimit burst 10000000", `action = { type = "ratelimit", rate = 1, burst = 10000000, then = { type = "drop" } }`, "rules[0].action.burst", "between 1 and 1000000"},
		{"then delay 2h", `action = { type = "ratelimit", rate = 1, burst = 1, then = { type = "delay", delay = "2h" } }`, "rules[0].action.then.delay", "at most 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(doc(`[[rules]]`, `id = "r"`, tt.action), "bounds.toml")
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("Parse = %v, want one error", err)
			}
			if e := es[0]; e.Field != tt.field || e.Line != 3 || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("error = %v (line %d, field %s), want line 3, %s: ...%s...", e, e.Line, e.Field, tt.field, tt.msg)
			}
		})
	}
}

// TestRulePatternBounds: config check refuses what the engine would: a
// rule with too many attribute conditions, and a rule set whose patterns
// hold more than faults.MaxRuleSetAutomata compiled.
func TestRulePatternBounds(t *testing.T) {
	_, err := Parse(doc(`[[rules]]`, `action.type = "drop"`, `match.attributes = [`+strings.Repeat(`{ type = "SOFTWARE" },`, 9)+`]`), "bounds.toml")
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "rules[0].match.attributes" || !strings.Contains(es[0].Msg, "9 conditions, at most 8") {
		t.Errorf("9 attribute conditions: Parse = %v, want one error on rules[0].match.attributes", err)
	}

	// One expression at about 70 KB of automaton, in enough rules to pass
	// 64 MiB; holding a Pattern keeps it compiled once for them all.
	const expr = "[ab]*a[ab]{11}c"
	keep, err := faults.CompilePattern(expr)
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	for i := range 1000 {
		c.Rules = append(c.Rules, faults.Rule{ID: fmt.Sprint("r", i), Match: faults.Match{Username: expr}, Action: faults.Action{Type: "drop"}})
	}
	err = c.Validate()
	if !errors.As(err, &es) || len(es) != 1 || es[0].Field != "rules" || !strings.Contains(es[0].Msg, "of automata, at most 64.0 MiB") {
		t.Errorf("1000 rules of %q: Validate = %v, want one error on rules", expr, err)
	}
	c.Rules = c.Rules[:100]
	if err := c.Validate(); err != nil {
		t.Errorf("100 rules of %q: Validate = %v", expr, err)
	}
	runtime.KeepAlive(keep)
}
