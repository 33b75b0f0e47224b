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
		{"attributes", Rule{Match: Match{Attributes: make([]AttributeMatch, 9)}}, "match.attributes", "9 conditions, at most 8"},
		{"attribute regexes", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "SOFTWARE", Regex: "a"}, {Type: "REALM", Regex: "b"}, {Type: "NONCE", Regex: "c"}}}},
			"match.attributes", "3 with a regex, at most 2"},
		{"automaton", Rule{Match: Match{Username: "[ab]*a[ab]{16}"}}, "match.username", `regular expression "[ab]*a[ab]{16}" needs more than 8192 automaton states`},
		{"attribute automaton", Rule{Match: Match{Attributes: []AttributeMatch{{Type: "USERNAME", Regex: "(?:.{0,100}a){10}"}}}},
			"match.attributes[0].regex", "automaton states"},
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
	for _, expr := range []string{strings.Repeat("x", MaxPatternBytes), worstPattern, worstRunesPattern, worstTablePattern} {
		r := Rule{Match: Match{Username: expr}, Action: Action{Type: "drop"}}
		if err := r.Validate(); err != nil {
			t.Errorf("pattern of %d bytes: %v", len(expr), err)
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

// The slowest patterns the bounds accept, for the inputs that cost them
// most. The automaton's cost per byte does not depend on the pattern's
// size: what moves it is the input's runes (ASCII is a table, a rune
// above ASCII or an invalid byte a decode and a binary search over the
// pattern's class runs) and how far the states lie apart in the table.
var (
	// worstPattern has no literal to skip on, a program near
	// MaxPatternInsts, and never matches a run of 'a'.
	worstPattern = ".{0,1000}[^a]"
	// worstRunesPattern cuts the runes above ASCII into the most class
	// runs (upper and lower case letters alternate through Latin
	// Extended, Greek, Cyrillic...), so each rune costs the longest
	// binary search; it never matches invalid UTF-8.
	worstRunesPattern = `\p{Lu}{2}x|\p{Ll}{2}y|\p{Lt}z|\p{Nd}w|\p{Mn}v|\p{Lo}u|\p{Sm}t`
	// worstTablePattern has an automaton near MaxPatternTransitions whose
	// states an input of a and b visits all over the table.
	worstTablePattern = "[ab]*a[ab]{11}c"
)

// BenchmarkDecideWorstRule measures one message against the most costly
// rules the bounds accept: a Binding request with a 509-byte USERNAME
// (RFC 8489's limit) that makes the rule's username pattern scan all of
// it, and a 64 KiB attribute over TCP that an attribute regex scans;
// worst-rule has every pattern a rule may have (a username and
// MaxAttributeRegexes attribute regexes) scan the USERNAME. The typical
// variant is an anchored username prefix.
func BenchmarkDecideWorstRule(b *testing.B) {
	ab := strings.Repeat("ab", 255)[:509]
	tests := []struct {
		name, expr string
		user       string // the USERNAME
		attr       int    // or the size of a SOFTWARE-like attribute 0x8050, over TCP
	}{
		{"typical", "^alice:", strings.Repeat("a", 509), 0},
		{"worst", worstPattern, strings.Repeat("a", 509), 0},
		{"worst-invalid-utf8", worstRunesPattern, strings.Repeat("\xff", 509), 0},
		{"worst-runes", worstRunesPattern, strings.Repeat("\u0100\u0101", 127) + "b", 0},
		{"worst-table", worstTablePattern, ab, 0},
		{"attribute-64KiB", worstPattern, "", 65000},
		{"worst-rule", worstPattern, strings.Repeat("a", 508) + "b", -1},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			p := mustPattern(b, tt.expr)
			r := Rule{ID: "r", Match: Match{Username: tt.expr}, Action: Action{Type: "drop"}}
			pk := &Packet{Client: clientA}
			switch {
			case tt.attr < 0:
				// Every pattern a rule may have scans the whole USERNAME:
				// all but the last match at its last byte.
				for i := range MaxAttributeRegexes {
					expr := tt.expr
					if i == MaxAttributeRegexes-1 {
						expr = ".{0,1000}c"
					}
					r.Match.Attributes = append(r.Match.Attributes, AttributeMatch{Type: "USERNAME", Regex: expr})
				}
				pk.Data = buildSTUN(b, stun.BindingRequest, stun.RawAttribute{Type: stun.AttrUsername, Value: []byte(tt.user)})
			case tt.attr > 0:
				r.Match = Match{Attributes: []AttributeMatch{{Type: "0x8050", Regex: tt.expr}}}
				v := []byte(strings.Repeat("a", tt.attr))
				pk.Data = buildSTUN(b, stun.BindingRequest, stun.RawAttribute{Type: 0x8050, Value: v})
				pk.Transport = TCP
			default:
				pk.Data = buildSTUN(b, stun.BindingRequest, stun.RawAttribute{Type: stun.AttrUsername, Value: []byte(tt.user)})
			}
			e := NewEngine(EngineOptions{})
			mustAdd(b, e, r)
			b.ReportMetric(float64(len(p.dfa.trans)), "transitions")
			for b.Loop() {
				if e.Decide(fresh(pk)).Fired() {
					b.Fatal("fired")
				}
			}
		})
	}
}

// The patterns of a rule set are bounded in memory as a whole: the active
// set (Add, AddAll, Update) and each set given at once (Replace, a
// scenario), with the same message from CheckRuleSetAutomata.
func TestRuleSetAutomataBound(t *testing.T) {
	defer func(n int) { maxRuleSetAutomata = n }(maxRuleSetAutomata)
	maxRuleSetAutomata = 200 << 10 // three worstTablePattern rules (70 KB each) do not fit
	big := func(id string) Rule {
		return Rule{ID: id, Match: Match{Username: worstTablePattern}, Action: Action{Type: "drop"}}
	}
	three := []Rule{big("r0"), big("r1"), big("r2")}
	const msg = "of automata, at most 200 KiB"

	if err := CheckRuleSetAutomata(three); err == nil || !strings.Contains(err.Error(), msg) {
		t.Errorf("CheckRuleSetAutomata(3 big rules) = %v, want an error saying %q", err, msg)
	}
	if err := CheckRuleSetAutomata(three[:2]); err != nil {
		t.Errorf("CheckRuleSetAutomata(2 big rules) = %v", err)
	}
	e := NewEngine(EngineOptions{})
	_, err := e.Replace(three)
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "rules" || !strings.Contains(fes[0].Msg, msg) {
		t.Fatalf("Replace(3 big rules) = %v, want an error on rules saying %q", err, msg)
	}
	if _, err := e.Replace(three[:2]); err != nil {
		t.Fatalf("Replace(2 big rules) = %v", err)
	}
	if _, err := e.Add(three[2]); !errors.Is(err, ErrTooManyRules) || !strings.Contains(err.Error(), msg) {
		t.Errorf("Add of a third big rule = %v, want ErrTooManyRules saying %q", err, msg)
	}
	if _, err := e.Add(big("r0")); err != nil {
		t.Errorf("replacing a big rule with a big rule = %v, want it to fit", err)
	}
	_, err = e.AddAll([]Rule{three[2]})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "rules" || !strings.Contains(fes[0].Msg, msg) {
		t.Errorf("AddAll of a third big rule = %v, want an error on rules", err)
	}
	if _, err := e.Update("r1", func(r *Rule) error {
		r.Match.Attributes = []AttributeMatch{{Type: "SOFTWARE", Regex: worstTablePattern}}
		return nil
	}); !errors.Is(err, ErrTooManyRules) {
		t.Errorf("Update doubling a big rule = %v, want ErrTooManyRules", err)
	}
	if _, err := e.Update("r1", func(r *Rule) error { r.Match.Username = "^alice:"; return nil }); err != nil {
		t.Errorf("Update shrinking a big rule = %v", err)
	}
	if _, err := e.Add(three[2]); err != nil {
		t.Errorf("Add of a big rule after another shrank = %v", err)
	}
	err = e.SetScenarios(map[string]Scenario{"big": {Rules: three}})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "scenarios.big.rules" || !strings.Contains(fes[0].Msg, msg) {
		t.Errorf("SetScenarios with 3 big rules = %v, want an error on scenarios.big.rules", err)
	}
}
