package faults

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxRules bounds the active rule set and each rule set given at once
// (Replace, AddAll, a scenario or one of its steps): a message's cost grows
// with the rules its header lets through.
const MaxRules = 10000

// ErrTooManyRules is wrapped by the error of an Add that would make the
// active rule set larger than MaxRules.
var ErrTooManyRules = errors.New("too many rules")

// Change is what one change to the active rules did. Every Engine method
// that changes them returns one, worked out under the same lock as the
// change itself, so concurrent callers (Go code and control clients alike)
// each learn exactly what their own call did.
type Change struct {
	// Revision is the engine's revision after the change: the one it made,
	// or the current one when it changed nothing. Decide reads it (or a
	// later one) by the time the method returns.
	Revision uint64
	// Rules are the rules as stored (IDs filled in, copies the caller may
	// keep) by Add, AddAll, Update, SetEnabled, Replace and
	// ActivateScenario, in the order they were given.
	Rules []Rule
	// Added are the IDs of rules that are new, Replaced those that replaced
	// an active rule with the same ID (their counters restart), and Removed
	// those that are gone. Added and Replaced are in the order the rules
	// were given, Removed in the evaluation order they had. Each is nil when
	// empty.
	Added, Replaced, Removed []string
}

// Add adds r, or replaces the rule with the same ID (resetting its counters
// and its For, and keeping its place among rules of equal priority). An empty
// ID is generated ("rule-7"). The Change has the rule as stored in Rules[0]
// and its ID in Added or Replaced. A rule that does not validate is rejected
// with an error holding *FieldError values, and nothing changes.
func (e *Engine) Add(r Rule) (Change, error) {
	// Compiled before the lock is taken: building a pattern's automaton
	// takes tens of milliseconds at the bounds, and the other writers (and
	// the control ops that take the lock) need not wait for it.
	c, err := e.compileRule(r)
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	id := r.ID
	if id == "" {
		id = e.newID(s.rules, nil)
	}
	if err != nil {
		return Change{Revision: s.revision}, fmt.Errorf("faults: rule %q: %w", id, err)
	}
	c.rule.ID = id
	if len(s.rules) >= MaxRules && find(s.rules, id) < 0 {
		return Change{Revision: s.revision}, fmt.Errorf("faults: rule %q: %w: %d are active, at most %d", id, ErrTooManyRules, len(s.rules), MaxRules)
	}
	if n := setAutomata(s.rules) + c.automata - replacedAutomata(s.rules, id); n > maxRuleSetAutomata {
		return Change{Revision: s.revision}, fmt.Errorf("faults: rule %q: %w: beside the active rules, %s", id, ErrTooManyRules, automataError(n))
	}
	rules := slices.Clone(s.rules)
	ch := Change{Rules: []Rule{c.rule.Clone()}}
	e.prepare(c, e.clock.Now())
	if i := find(rules, id); i >= 0 {
		c.order = rules[i].order
		rules[i] = *c
		ch.Replaced = []string{id}
	} else {
		c.order = e.order()
		rules = append(rules, *c)
		ch.Added = []string{id}
	}
	ch.Revision = e.commit(rules, s.scenario)
	return ch, nil
}

// AddAll adds rules as one change with one revision, each as Add would
// (a known ID replaces that rule in place). It is all or nothing: every rule
// is validated first, and if any is invalid (or two share an ID) nothing
// changes and the error holds a *FieldError per problem, its Field prefixed
// with "rules[i].".
func (e *Engine) AddAll(rules []Rule) (Change, error) {
	cs, err := e.compileRules("rules", rules) // before the lock, as in Add
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	if err != nil {
		return Change{Revision: s.revision}, fmt.Errorf("faults: %w", err)
	}
	out := slices.Clone(s.rules)
	at := make(map[string]int, len(out))
	for i := range out {
		at[out[i].rule.ID] = i
	}
	added := 0
	for _, c := range cs {
		if _, ok := at[c.rule.ID]; !ok || c.rule.ID == "" {
			added++
		}
	}
	if n := len(out) + added; n > MaxRules {
		return Change{Revision: s.revision}, fmt.Errorf("faults: %w", &FieldError{Field: "rules",
			Msg: fmt.Sprintf("%d new rules beside the %d active make %d, at most %d", added, len(out), n, MaxRules)})
	}
	n := setAutomata(out)
	for _, c := range cs {
		n += c.automata - replacedAutomata(out, c.rule.ID)
	}
	if n > maxRuleSetAutomata {
		return Change{Revision: s.revision}, fmt.Errorf("faults: %w", &FieldError{Field: "rules", Msg: "beside the active rules, " + automataError(n)})
	}
	now := e.clock.Now()
	ch := Change{Rules: make([]Rule, 0, len(cs))}
	for _, c := range cs {
		if c.rule.ID == "" {
			c.rule.ID = e.newID(nil, at)
		}
		e.prepare(c, now)
		if i, ok := at[c.rule.ID]; ok {
			c.order = out[i].order
			out[i] = *c
			ch.Replaced = append(ch.Replaced, c.rule.ID)
		} else {
			c.order = e.order()
			at[c.rule.ID] = len(out)
			out = append(out, *c)
			ch.Added = append(ch.Added, c.rule.ID)
		}
		ch.Rules = append(ch.Rules, c.rule.Clone())
	}
	if len(cs) == 0 {
		ch.Revision = s.revision
		return ch, nil
	}
	ch.Revision = e.commit(out, s.scenario)
	return ch, nil
}

// Update changes the rule with the given ID atomically: f gets a copy of the
// rule to modify, and the result replaces the rule as Add would (its
// counters restart), with no other change to that rule in between. An error
// from f, or a result that does not validate or has another ID, leaves the
// rule as it was; f's error is returned wrapped. f runs with the engine's
// writer lock held: it must not call the Engine. The result is compiled with
// the lock released, so f may run more than once: when another change to the
// rule lands meanwhile, f runs again on the rule as that change left it.
func (e *Engine) Update(id string, f func(*Rule) error) (Change, error) {
	for try := 1; ; try++ {
		if ch, done, err := e.update(id, f, try < maxCompileTries); done {
			return ch, err
		}
	}
}

// maxCompileTries bounds the tries of a change that compiles with the
// engine's lock released and then finds that what it compiled changed
// meanwhile (Update, ActivateScenario, a timed scenario's next step): the
// last try compiles with the lock held, so a change always lands.
const maxCompileTries = 3

// unlocked runs f with e.mu released, and takes it again (also when f
// panics). e.mu is held.
func (e *Engine) unlocked(f func()) {
	e.mu.Unlock()
	defer e.mu.Lock()
	f()
}

// update is one try of Update. With unlocked, the result is compiled with
// e.mu released, and done is false when the rule changed meanwhile: the
// result is dropped, and Update tries again.
func (e *Engine) update(id string, f func(*Rule) error, unlocked bool) (ch Change, done bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, i, err := e.locate(id)
	if err != nil {
		return Change{Revision: s.revision}, true, err
	}
	base := s.rules[i].rule
	r := base.Clone()
	if err := f(&r); err != nil {
		return Change{Revision: s.revision}, true, fmt.Errorf("faults: rule %q: %w", id, err)
	}
	if r.ID != id {
		return Change{Revision: s.revision}, true, fmt.Errorf("faults: rule %q: %w", id,
			&FieldError{Field: "id", Msg: fmt.Sprintf("an update cannot change the id (to %q): add a new rule and remove this one", r.ID)})
	}
	var c *compiledRule
	if unlocked {
		e.unlocked(func() { c, err = e.compileRule(r) })
		// Every change to a rule gives it a new *Rule (SetEnabled
		// included), and the others keep it.
		if s, i, _ = e.locate(id); i < 0 || s.rules[i].rule != base {
			return Change{}, false, nil
		}
	} else {
		c, err = e.compileRule(r)
	}
	if err != nil {
		return Change{Revision: s.revision}, true, fmt.Errorf("faults: rule %q: %w", id, err)
	}
	if n := setAutomata(s.rules) + c.automata - s.rules[i].automata; n > maxRuleSetAutomata {
		return Change{Revision: s.revision}, true, fmt.Errorf("faults: rule %q: %w: beside the active rules, %s", id, ErrTooManyRules, automataError(n))
	}
	rules := slices.Clone(s.rules)
	c.order = rules[i].order
	e.prepare(c, e.clock.Now())
	rules[i] = *c
	return Change{Revision: e.commit(rules, s.scenario), Rules: []Rule{c.rule.Clone()}, Replaced: []string{id}}, true, nil
}

// Replace swaps the whole rule set for rules, in one revision. Every rule is
// validated first; if any is invalid (or two share an ID) nothing changes and
// the error holds a *FieldError per problem, its Field prefixed with
// "rules[i].". Every rule starts with fresh counters. The Change says which
// IDs are new (Added), kept (Replaced) and gone (Removed).
func (e *Engine) Replace(rules []Rule) (Change, error) {
	cs, err := e.compileRules("rules", rules) // before the lock, as in Add
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		return Change{Revision: e.snap.Load().revision}, fmt.Errorf("faults: %w", err)
	}
	e.place(cs)
	e.stopTimeline()
	return e.swap(cs, ""), nil
}

// swap makes cs the whole rule set and returns the Change. e.mu is held.
func (e *Engine) swap(cs []*compiledRule, scenario string) Change {
	old := e.snap.Load().rules
	before := make(map[string]bool, len(old))
	for i := range old {
		before[old[i].rule.ID] = true
	}
	var ch Change
	after := make(map[string]bool, len(cs))
	rules := make([]compiledRule, len(cs))
	for i, c := range cs {
		rules[i] = *c
		after[c.rule.ID] = true
		ch.Rules = append(ch.Rules, c.rule.Clone())
		if before[c.rule.ID] {
			ch.Replaced = append(ch.Replaced, c.rule.ID)
		} else {
			ch.Added = append(ch.Added, c.rule.ID)
		}
	}
	for i := range old {
		if id := old[i].rule.ID; !after[id] {
			ch.Removed = append(ch.Removed, id)
		}
	}
	ch.Revision = e.commit(rules, scenario)
	return ch
}

// compileRules validates and compiles rules, naming fields prefix[i].field,
// and checks the set's own bounds (MaxRules, MaxRuleSetAutomata). IDs and
// orders are left to the caller. It reads nothing e.mu guards: callers call
// it before they take the lock.
func (e *Engine) compileRules(prefix string, rules []Rule) ([]*compiledRule, error) {
	if len(rules) > MaxRules {
		return nil, &FieldError{Field: prefix, Msg: fmt.Sprintf("%d rules, at most %d", len(rules), MaxRules)}
	}
	var errs []error
	out := make([]*compiledRule, 0, len(rules))
	seen := make(map[string]int)
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d].", prefix, i)
		if r.ID != "" {
			if j, dup := seen[r.ID]; dup {
				errs = append(errs, &FieldError{Field: at + "id", Msg: fmt.Sprintf("duplicate id %q (also %s[%d])", r.ID, prefix, j)})
				continue
			}
			seen[r.ID] = i
		}
		c, err := e.compileRule(r)
		if err != nil {
			fes := FieldErrors(err)
			if len(fes) == 0 { // Validate always returns FieldErrors
				fes = []*FieldError{{Field: "", Msg: err.Error()}}
			}
			for _, fe := range fes {
				errs = append(errs, &FieldError{Field: strings.TrimSuffix(at+fe.Field, "."), Msg: fe.Msg})
			}
			continue
		}
		out = append(out, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	n := 0
	for _, c := range out {
		n += c.automata
	}
	if n > maxRuleSetAutomata {
		return nil, &FieldError{Field: prefix, Msg: automataError(n)}
	}
	return out, nil
}

// replacedAutomata returns the bytes the patterns of the rule with the
// given ID in rules hold, 0 when there is none.
func replacedAutomata(rules []compiledRule, id string) int {
	if i := find(rules, id); id != "" && i >= 0 {
		return rules[i].automata
	}
	return 0
}

// place gives every rule of cs, a whole rule set compiled by compileRules,
// its ID, order, expiry and machine. e.mu is held.
func (e *Engine) place(cs []*compiledRule) {
	now := e.clock.Now()
	at := make(map[string]int, len(cs))
	for i, c := range cs {
		if c.rule.ID != "" {
			at[c.rule.ID] = i
		}
	}
	for _, c := range cs {
		if c.rule.ID == "" {
			c.rule.ID = e.newID(nil, at)
			at[c.rule.ID] = -1
		}
		c.order = e.order()
		e.prepare(c, now)
	}
}

// locate returns the current snapshot and the position of rule id in it,
// or ErrNotFound. Called with e.mu held.
func (e *Engine) locate(id string) (*snapshot, int, error) {
	s := e.snap.Load()
	i := find(s.rules, id)
	if i < 0 {
		return s, -1, fmt.Errorf("faults: rule %q %w", id, ErrNotFound)
	}
	return s, i, nil
}

// Remove removes the rule with the given ID; the Change has it in Removed.
func (e *Engine) Remove(id string) (Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, i, err := e.locate(id)
	if err != nil {
		return Change{Revision: s.revision}, err
	}
	rules := slices.Delete(slices.Clone(s.rules), i, i+1)
	return Change{Revision: e.commit(rules, s.scenario), Removed: []string{id}}, nil
}

// RemoveByLabels removes every rule that has all the given labels; the
// Change lists them in Removed. An empty selector removes nothing: use Clear
// to remove every rule. Removing nothing is not a revision.
func (e *Engine) RemoveByLabels(labels map[string]string) Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	ch := Change{Revision: s.revision}
	if len(labels) == 0 {
		return ch
	}
	rules := make([]compiledRule, 0, len(s.rules))
	for i := range s.rules {
		if c := &s.rules[i]; hasLabels(c.rule.Labels, labels) {
			ch.Removed = append(ch.Removed, c.rule.ID)
		} else {
			rules = append(rules, *c)
		}
	}
	if len(ch.Removed) > 0 {
		ch.Revision = e.commit(rules, s.scenario)
	}
	return ch
}

// Clear removes every rule, in one revision; the Change lists them in
// Removed.
func (e *Engine) Clear() Change {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopTimeline()
	ch := Change{}
	if ids := e.snap.Load().ids(); len(ids) > 0 {
		ch.Removed = ids
	}
	ch.Revision = e.commit(nil, "")
	return ch
}

// SetEnabled switches the rule with the given ID on or off, keeping its
// counters. The Change has the rule as it now is in Rules[0] (and no IDs:
// nothing was added, replaced or removed).
func (e *Engine) SetEnabled(id string, enabled bool) (Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, i, err := e.locate(id)
	if err != nil {
		return Change{Revision: s.revision}, err
	}
	rules := slices.Clone(s.rules)
	c := &rules[i] // shares st and the compiled matcher: counters survive
	rule := *c.rule
	rule.Enabled = &enabled
	c.rule, c.enabled = &rule, enabled
	return Change{Revision: e.commit(rules, s.scenario), Rules: []Rule{rule.Clone()}}, nil
}

// newID returns a generated ID that no rule in rules and no key of taken
// has. e.mu is held.
func (e *Engine) newID(rules []compiledRule, taken map[string]int) string {
	for {
		e.nextID++
		id := "rule-" + strconv.FormatUint(e.nextID, 10)
		if _, ok := taken[id]; ok {
			continue
		}
		if find(rules, id) < 0 {
			return id
		}
	}
}

// find returns the index of the rule with the given ID in rules, or -1.
func find(rules []compiledRule, id string) int {
	for i := range rules {
		if rules[i].rule.ID == id {
			return i
		}
	}
	return -1
}

// ids returns the IDs of s's rules, in evaluation order.
func (s *snapshot) ids() []string {
	ids := make([]string, len(s.rules))
	for i := range s.rules {
		ids[i] = s.rules[i].rule.ID
	}
	return ids
}

// commit sorts rules into evaluation order, publishes them as the next
// revision and returns it. e.mu is held.
func (e *Engine) commit(rules []compiledRule, scenario string) uint64 {
	slices.SortStableFunc(rules, func(a, b compiledRule) int {
		return cmp.Or(cmp.Compare(a.rule.Priority, b.rule.Priority), cmp.Compare(a.order, b.order))
	})
	s := &snapshot{
		rules:    rules,
		index:    newRuleIndex(rules),
		revision: e.snap.Load().revision + 1,
		scenario: scenario,
	}
	for i := range rules {
		if rules[i].rule.Match.Transmission > 0 {
			s.needTx = true
		}
		if m := &rules[i].rule.Match; rules[i].enabled && m.Leg == LegPeer {
			d := 0
			if m.Direction == "out" {
				d = 1
			}
			s.peer[d] = append(s.peer[d], int32(i)) //nolint:gosec // rule counts are small
		}
	}
	if s.needTx && e.tx.Load() == nil {
		e.tx.Store(new(txTracker))
	}
	old := e.snap.Swap(s)
	retire(old.rules, rules)
	return s.revision
}
