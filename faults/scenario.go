package faults

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Scenario is a named rule set that ActivateScenario swaps in as a whole:
// either Rules, active until something else replaces them, or a timeline
// of Steps, each rule set active from its offset until the next step's.
type Scenario struct {
	// Description says what the scenario reproduces.
	Description string `toml:"description" json:"description,omitempty"`
	// Rules is the rule set of a plain scenario. A scenario has Rules or
	// Steps, not both.
	Rules []Rule `toml:"rules" json:"rules,omitempty"`
	// Steps is the timeline of a timed scenario, in order of At; the first
	// step is at "0s" and starts at activation.
	Steps []Step `toml:"steps" json:"steps,omitempty"`
	// Repeat, when not 0, starts the timeline over from step 0 this long
	// after each start; it must be after the last step's At. 0 = the last
	// step stays active.
	Repeat Duration `toml:"repeat" json:"repeat,omitempty"`
}

// Step is one step of a timed scenario: its Rules are the whole active rule
// set from At after activation until the next step (an empty step has no
// rules: recovery).
type Step struct {
	// At is the step's offset from activation (from the cycle's start when
	// the scenario repeats).
	At Duration `toml:"at" json:"at"`
	// Rules is the rule set active during the step.
	Rules []Rule `toml:"rules" json:"rules,omitempty"`
}

// Timed reports whether s is a timeline of steps.
func (s Scenario) Timed() bool { return s.Steps != nil }

// ValidateShape reports the problems of the scenario's form, as *FieldError
// values whose Field is relative to the scenario ("steps[1].at", "repeat"):
// both Rules and Steps, an empty Steps, a first step not at 0s, a step not
// after the one before it, a negative offset, Repeat without Steps or not
// after the last step. The rules themselves are checked by [Rule.Validate]
// ([Engine.SetScenarios] and config.Validate run both).
func (s Scenario) ValidateShape() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Steps == nil {
		if s.Repeat != 0 {
			add("repeat", "only a timed scenario (one with steps) repeats")
		}
		return errors.Join(errs...)
	}
	if s.Rules != nil {
		add("rules", "a scenario has rules or steps, not both: put these rules in a step")
	}
	if len(s.Steps) == 0 {
		add("steps", "must not be empty: a timed scenario has at least one step (at = \"0s\")")
		return errors.Join(errs...)
	}
	for i, st := range s.Steps {
		field := "steps[" + strconv.Itoa(i) + "].at"
		switch {
		case st.At < 0:
			add(field, "negative offset %s (want a duration from activation, 0s or more)", st.At)
		case i == 0 && st.At != 0:
			add(field, "the first step starts at activation: want \"0s\", not %q", st.At)
		case i > 0 && st.At <= s.Steps[i-1].At:
			add(field, "step out of order: %s is not after steps[%d].at (%s)", st.At, i-1, s.Steps[i-1].At)
		}
	}
	last := s.Steps[len(s.Steps)-1].At
	switch {
	case s.Repeat < 0:
		add("repeat", "negative period %s (want 0 for none, or a duration after the last step)", s.Repeat)
	case s.Repeat > 0 && s.Repeat <= last:
		add("repeat", "period %s is not after the last step's at (%s)", s.Repeat, last)
	}
	return errors.Join(errs...)
}

// Clone returns a deep copy of s.
func (s Scenario) Clone() Scenario {
	s.Rules = cloneRuleSlice(s.Rules)
	if s.Steps != nil {
		steps := make([]Step, len(s.Steps))
		for i, st := range s.Steps {
			steps[i] = Step{At: st.At, Rules: cloneRuleSlice(st.Rules)}
		}
		s.Steps = steps
	}
	return s
}

func cloneRuleSlice(rules []Rule) []Rule {
	if rules == nil {
		return nil
	}
	out := make([]Rule, len(rules))
	for i, r := range rules {
		out[i] = r.Clone()
	}
	return out
}

// ScenarioStep is where a running timed scenario is: in journal entries of
// step changes (Entry.Step) and in [Engine.ScenarioStep].
type ScenarioStep struct {
	// Scenario is the timed scenario's name.
	Scenario string `json:"scenario"`
	// Index is the active step's index in Steps, Steps how many there are.
	Index int `json:"index"`
	Steps int `json:"steps"`
	// Cycle counts the repeats completed before this one (0 on the first
	// run through the steps).
	Cycle int `json:"cycle,omitempty"`
	// Started is when the step became active, on the engine's Clock.
	Started time.Time `json:"started"`
	// Next is when the next step starts (the zero time: never, the last
	// step of a scenario that does not repeat stays), NextIn how long that
	// is after the moment of reading.
	Next   time.Time `json:"next,omitzero"`
	NextIn Duration  `json:"next_in,omitempty"`
}

// timeline is a running timed scenario. It is owned by the engine, under
// e.mu.
type timeline struct {
	name  string
	sc    Scenario
	start time.Time
	step  int // active step
	cycle int
	timer Timer
}

// at returns when step i of cycle starts.
func (tl *timeline) at(cycle, i int) time.Time {
	return tl.start.Add(time.Duration(cycle)*tl.sc.Repeat.D() + tl.sc.Steps[i].At.D())
}

// next returns the step after the active one and when it starts; ok is
// false when the active step stays.
func (tl *timeline) next() (cycle, i int, when time.Time, ok bool) {
	cycle, i = tl.cycle, tl.step+1
	if i == len(tl.sc.Steps) {
		if tl.sc.Repeat == 0 {
			return 0, 0, time.Time{}, false
		}
		cycle, i = cycle+1, 0
	}
	return cycle, i, tl.at(cycle, i), true
}

// position returns the step active at now.
func (tl *timeline) position(now time.Time) (cycle, i int) {
	el := max(now.Sub(tl.start), 0)
	if p := tl.sc.Repeat.D(); p > 0 {
		cycle = int(el / p)
		el %= p
	}
	for j, st := range tl.sc.Steps {
		if st.At.D() <= el {
			i = j
		}
	}
	return cycle, i
}

// SetScenarios replaces the named scenarios that ActivateScenario can
// activate. The active rules do not change, nor does a timed scenario
// already running (it keeps the steps it was activated with). Every
// scenario and rule is validated first; if any is invalid nothing changes
// and the error holds a *FieldError per problem, its Field prefixed with
// "scenarios.NAME." ("scenarios.outage.steps[1].rules[0].action.code").
func (e *Engine) SetScenarios(scenarios map[string]Scenario) error {
	stored, err := e.validScenarios(scenarios) // before the lock, as in Add
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setScenarios(stored)
	s := e.snap.Load()
	e.commit(slices.Clone(s.rules), s.scenario)
	return nil
}

// setScenarios makes scenarios the stored ones. e.mu is held.
func (e *Engine) setScenarios(scenarios map[string]Scenario) {
	e.scenarios = scenarios
	e.scenariosRev++
}

// validScenarios validates every scenario and returns deep copies of them
// all, or an error with a *FieldError per problem. It compiles every rule,
// so it is called before e.mu is taken (compileRules reads nothing e.mu
// guards).
func (e *Engine) validScenarios(scenarios map[string]Scenario) (map[string]Scenario, error) {
	var errs []error
	stored := make(map[string]Scenario, len(scenarios))
	for _, name := range slices.Sorted(maps.Keys(scenarios)) {
		field := "scenarios." + name
		if !ValidName(name) {
			errs = append(errs, &FieldError{Field: "scenarios." + strconv.Quote(name), Msg: "invalid scenario name (want letters, digits, '_' and '-')"})
			continue
		}
		sc := scenarios[name]
		bad := false
		for _, fe := range FieldErrors(sc.ValidateShape()) {
			errs = append(errs, &FieldError{Field: field + "." + fe.Field, Msg: fe.Msg})
			bad = true
		}
		if _, err := e.compileRules(field+".rules", sc.Rules); err != nil {
			errs = append(errs, err)
			bad = true
		}
		for i, st := range sc.Steps {
			if _, err := e.compileRules(field+".steps["+strconv.Itoa(i)+"].rules", st.Rules); err != nil {
				errs = append(errs, err)
				bad = true
			}
		}
		if !bad {
			stored[name] = sc.Clone()
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("faults: %w", errors.Join(errs...))
	}
	return stored, nil
}

// Scenarios returns the names of the scenarios SetScenarios stored, sorted.
func (e *Engine) Scenarios() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.scenarios))
}

// ScenarioDefinition returns the named scenario as SetScenarios stored it.
func (e *Engine) ScenarioDefinition(name string) (Scenario, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sc, ok := e.scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("faults: scenario %q %w", name, ErrNotFound)
	}
	return sc.Clone(), nil
}

// ActivateScenario replaces the active rules with the named scenario's, in
// one revision, with fresh counters and For starting now. Machine states are
// kept (see ResetMachines). The Change is Replace's.
//
// A timed scenario starts at step 0: its rules become the active set now,
// and each later step's replace them, with fresh counters, when the
// engine's Clock reaches the step's At (a ManualClock moves through the
// steps with Advance). Each step change, step 0 included, is a journal
// entry with Action "step" and Step set, delivered to subscriptions. When
// the clock jumps past several steps at once, the step now due is applied
// and recorded, and the ones skipped are not. The timeline runs until
// Replace, Clear or another ActivateScenario; changes to single rules (Add,
// Remove, ...) in between last until the next step replaces the set.
func (e *Engine) ActivateScenario(name string) (Change, error) {
	for try := 1; ; try++ {
		if ch, done, err := e.activate(name, try < maxCompileTries); done {
			return ch, err
		}
	}
}

// activate is one try of ActivateScenario. With unlocked, the rules (a timed
// scenario's first step's) are compiled with e.mu released, as in Add, and
// done is false when the stored scenarios changed meanwhile.
func (e *Engine) activate(name string, unlocked bool) (ch Change, done bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sc, ok := e.scenarios[name]
	if !ok {
		return Change{Revision: e.snap.Load().revision}, true, fmt.Errorf("faults: scenario %q %w", name, ErrNotFound)
	}
	field, rules := "scenarios."+name+".rules", sc.Rules
	if sc.Timed() {
		field, rules = stepField(name, 0), sc.Steps[0].Rules
	}
	var cs []*compiledRule
	if unlocked {
		rev := e.scenariosRev
		e.unlocked(func() { cs, err = e.compileRules(field, rules) })
		if e.scenariosRev != rev {
			return Change{}, false, nil
		}
	} else {
		cs, err = e.compileRules(field, rules)
	}
	if err != nil {
		return Change{Revision: e.snap.Load().revision}, true, fmt.Errorf("faults: %w", err) // validated by SetScenarios: cannot happen
	}
	e.stopTimeline()
	if !sc.Timed() {
		e.place(cs)
		return e.swap(cs, name), true, nil
	}
	tl := &timeline{name: name, sc: sc, start: e.clock.Now()}
	e.timeline = tl
	return e.enterStep(tl, 0, 0, tl.start, cs), true, nil
}

// ScenarioStep returns where the running timed scenario is, and false when
// none is running.
func (e *Engine) ScenarioStep() (ScenarioStep, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	tl := e.timeline
	if tl == nil {
		return ScenarioStep{}, false
	}
	return tl.status(e.clock.Now()), true
}

func (tl *timeline) status(now time.Time) ScenarioStep {
	st := ScenarioStep{Scenario: tl.name, Index: tl.step, Steps: len(tl.sc.Steps), Cycle: tl.cycle, Started: tl.at(tl.cycle, tl.step)}
	if _, _, when, ok := tl.next(); ok {
		st.Next = when
		st.NextIn = Duration(max(when.Sub(now), 0))
	}
	return st
}

// stepField names the field of the rules of step i of the named scenario.
func stepField(name string, i int) string {
	return "scenarios." + name + ".steps[" + strconv.Itoa(i) + "].rules"
}

// enterStep makes cs, the rules of step i compiled, the active rule set as
// step i of cycle, records it and arms the timer for the next step. e.mu is
// held.
func (e *Engine) enterStep(tl *timeline, cycle, i int, now time.Time, cs []*compiledRule) Change {
	e.place(cs)
	tl.cycle, tl.step = cycle, i
	ch := e.swap(cs, tl.name)
	st := tl.status(now)
	e.journal.record(Entry{Time: now, Action: "step", Step: &st, Seed: e.seed})
	if _, _, when, ok := tl.next(); ok {
		tl.timer = e.clock.AfterFunc(max(when.Sub(now), 0), func() { e.stepDue(tl) })
	}
	return ch
}

// stepDue moves tl on to the step due now, when tl still runs.
func (e *Engine) stepDue(tl *timeline) {
	for try := 1; !e.stepOn(tl, try < maxCompileTries); try++ {
	}
}

// stepOn is one try of stepDue, and reports whether it is done. With
// unlocked, the step's rules are compiled with e.mu released, as in Add, and
// it is not done when the clock moved past that step meanwhile.
func (e *Engine) stepOn(tl *timeline, unlocked bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.timeline != tl {
		return true
	}
	now := e.clock.Now()
	cycle, i := tl.position(now)
	if cycle == tl.cycle && i == tl.step {
		// Early (a clock that fires before its time): wait on.
		if _, _, when, ok := tl.next(); ok {
			tl.timer = e.clock.AfterFunc(max(when.Sub(now), 0), func() { e.stepDue(tl) })
		}
		return true
	}
	var (
		cs  []*compiledRule
		err error
	)
	field, rules := stepField(tl.name, i), tl.sc.Steps[i].Rules // tl.sc is immutable
	if unlocked {
		e.unlocked(func() { cs, err = e.compileRules(field, rules) })
		if e.timeline != tl {
			return true
		}
		now = e.clock.Now()
		c, due := tl.position(now)
		if due != i || (c == tl.cycle && due == tl.step) {
			return false // the clock moved on past step i (or back)
		}
		cycle = c
	} else {
		cs, err = e.compileRules(field, rules)
	}
	if err != nil {
		return true // validated by SetScenarios: cannot happen
	}
	e.enterStep(tl, cycle, i, now, cs)
	return true
}

// stopTimeline stops the running timed scenario, if any. e.mu is held.
func (e *Engine) stopTimeline() {
	if tl := e.timeline; tl != nil {
		if tl.timer != nil {
			tl.timer.Stop()
		}
		e.timeline = nil
	}
}
