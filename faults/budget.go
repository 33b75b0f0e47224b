package faults

import (
	"fmt"
	"unsafe"
)

// MaxRuleSetAutomata bounds the memory the patterns of a rule set hold
// once compiled: the active rule set, and each rule set given at once
// (Replace, AddAll, a scenario or one of its steps). A pattern's automaton
// is at most about 260 KiB (MaxPatternTransitions, plus its rune classes),
// and a typical one about 1 KiB, so 10,000 rules with typical patterns fit
// many times over, but not 10,000 rules at the bounds (gigabytes).
const MaxRuleSetAutomata = 64 << 20

// maxRuleSetAutomata is MaxRuleSetAutomata, lowered by tests.
var maxRuleSetAutomata = MaxRuleSetAutomata

// size returns the bytes p holds. Patterns that share their automaton
// (the same expression) count it each: the budget is conservative.
func (p *Pattern) size() int {
	a := p.dfa
	return int(unsafe.Sizeof(*p)+unsafe.Sizeof(*p.shared)+unsafe.Sizeof(*a)) + len(p.expr) + len(p.lit) +
		2*(len(a.trans)+len(a.pages)+len(a.blocks)+len(a.cls)) + 4*len(a.lo) + len(a.final)
}

// automata returns the bytes the patterns of m hold.
func (m *matcher) automata() int {
	n := 0
	for _, c := range m.conds {
		switch {
		case c.pattern != nil:
			n += c.pattern.size()
		case c.attr != nil && c.attr.regex != nil:
			n += c.attr.regex.size()
		case c.webhook != nil && c.webhook.q.Body != nil:
			n += c.webhook.q.Body.size()
		}
	}
	return n
}

// automataError is the error for a rule set whose patterns hold n bytes,
// more than MaxRuleSetAutomata.
func automataError(n int) string {
	return fmt.Sprintf("the rules' regular expressions compile to %s of automata, at most %s (use fewer or simpler patterns: one that remembers many positions, such as [ab]*a[ab]{11}, takes up to 260 KiB)",
		sizeText(n), sizeText(maxRuleSetAutomata))
}

// sizeText writes n bytes in KiB or MiB.
func sizeText(n int) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1<<10-1)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// CheckRuleSetAutomata returns an error when the patterns of rules, a rule
// set given at once, would hold more than MaxRuleSetAutomata compiled, as
// the Engine refuses them. It compiles every pattern; rules that do not
// validate count for the patterns that do. The config's validation calls
// it for each rule set.
func CheckRuleSetAutomata(rules []Rule) error {
	n := 0
	for i := range rules {
		m := &rules[i].Match
		exprs := []string{m.Username}
		for _, a := range m.Attributes {
			exprs = append(exprs, a.Regex)
		}
		if m.Webhook != nil {
			exprs = append(exprs, m.Webhook.Body)
		}
		for _, expr := range exprs {
			if expr == "" {
				continue
			}
			if p, err := CompilePattern(expr); err == nil {
				n += p.size()
			}
		}
	}
	if n > maxRuleSetAutomata {
		return fmt.Errorf("%s", automataError(n))
	}
	return nil
}

// setAutomata returns the bytes the patterns of rules hold.
func setAutomata(rules []compiledRule) int {
	n := 0
	for i := range rules {
		n += rules[i].automata
	}
	return n
}
