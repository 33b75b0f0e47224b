package faults

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

// Bounded cost per message: a rule's regular expressions are bounded in
// source and compiled size, and the rule set in count, with errors that
// name the field.
func TestRuleBounds(t *testing.T) {
	huge := strings.Repeat("(a|b)", 160_000) // 800 KB
	tests := []struct {
		name  string
		rule  Rule
		field string
		msg   string
	}{
		{"800 KB username", Rule{Match: Match{Username: huge}}, "match.username", "regular expression of 800000 bytes, at most 1024"},
		{"username repeats", Rule{Match: Match{Username: ".{0,900}x{0,900}"}}, "match.username", "instructions, at most 2048"},
		{"attribute regex", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", Regex: strings.Repeat("x", 1025)}}}},
			"match.attributes[0].regex", "at most 1024"},
		{"webhook body", Rule{Match: Match{Webhook: &WebhookMatch{Body: "a{0,1000}b{0,1000}c{0,1000}"}}}, "match.webhook.body", "instructions, at most 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Action = Action{Type: "drop"}
			fes := FieldErrors(tt.rule.Validate())
			if len(fes) != 1 || fes[0].Field != tt.field || !strings.Contains(fes[0].Msg, tt.msg) {
				t.Fatalf("Validate = %v, want one error on %s saying %q", fes, tt.field, tt.msg)
			}
			if len(fes[0].Msg) > 300 {
				t.Errorf("error message of %d bytes: it must not echo the whole pattern", len(fes[0].Msg))
			}
			if _, err := NewEngine(EngineOptions{}).Add(tt.rule); err == nil {
				t.Error("Add accepted the rule")
			}
		})
	}
	// The largest accepted patterns are accepted.
	for _, expr := range []string{strings.Repeat("x", MaxPatternBytes), worstPattern} {
		r := Rule{Match: Match{Username: expr}, Action: Action{Type: "drop"}}
		if err := r.Validate(); err != nil {
			t.Errorf("pattern of %d bytes, %d instructions: %v", len(expr), patternInsts(expr), err)
		}
	}
}

func TestRuleCountBound(t *testing.T) {
	e := NewEngine(EngineOptions{})
	rules := make([]Rule, MaxRules+1)
	for i := range rules {
		rules[i] = Rule{ID: fmt.Sprint("r", i), Action: Action{Type: "drop"}}
	}
	_, err := e.Replace(rules)
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "rules" || !strings.Contains(fes[0].Msg, "10001 rules, at most 10000") {
		t.Fatalf("Replace(10001 rules) = %v, want an error on rules", err)
	}
	if _, err := e.Replace(rules[:MaxRules]); err != nil {
		t.Fatalf("Replace(10000 rules) = %v", err)
	}
	if _, err := e.Add(rules[MaxRules]); !errors.Is(err, ErrTooManyRules) {
		t.Errorf("Add of rule 10001 = %v, want ErrTooManyRules", err)
	}
	if _, err := e.Add(rules[0]); err != nil {
		t.Errorf("replacing a rule of a full set = %v, want it to work", err)
	}
	_, err = e.AddAll([]Rule{rules[1], rules[MaxRules]})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "rules" {
		t.Errorf("AddAll beyond the bound = %v, want an error on rules", err)
	}
	err = e.SetScenarios(map[string]Scenario{"big": {Rules: rules}})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "scenarios.big.rules" {
		t.Errorf("SetScenarios with 10001 rules = %v, want an error on scenarios.big.rules", err)
	}
}

// worstPattern is about the slowest username pattern the bounds accept:
// no literal to skip on, and a program near MaxPatternInsts.
var worstPattern = ".{0,1000}[^a]"

// BenchmarkDecideWorstRule measures one message against the most costly
// rule the bounds accept: a username pattern at the program bound, and a
// Binding request with a 509-byte USERNAME (RFC 8489's limit) that makes
// it scan everything. The typical variant is an anchored username prefix.
func BenchmarkDecideWorstRule(b *testing.B) {
	user := strings.Repeat("a", 508)
	msg := buildSTUN(b, stun.BindingRequest, stun.NewUsername(user))
	for _, tt := range []struct{ name, expr string }{
		{"typical", "^alice:"},
		{"worst", worstPattern},
	} {
		b.Run(tt.name, func(b *testing.B) {
			e := NewEngine(EngineOptions{})
			mustAdd(b, e, Rule{ID: "r", Match: Match{Username: tt.expr}, Action: Action{Type: "drop"}})
			p := &Packet{}
			b.ReportMetric(float64(patternInsts(tt.expr)), "insts")
			for b.Loop() {
				*p = Packet{Data: msg, Client: clientA}
				if e.Decide(p).Fired() {
					b.Fatal("fired")
				}
			}
		})
	}
}
