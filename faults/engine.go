package faults

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is wrapped by the errors of operations on a rule or scenario
// that does not exist.
var ErrNotFound = errors.New("not found")

// EngineOptions configures an [Engine]. The zero value is usable.
type EngineOptions struct {
	// Clock times rule expiry (for), rate limits and journal entries.
	// Nil means SystemClock.
	Clock Clock
	// Rand is the source of every probabilistic decision (probability,
	// jitter). Nil means a PCG source seeded from Seed. The engine
	// serialises its own use of it, so it must not be used elsewhere.
	Rand *rand.Rand
	// Seed seeds the RNG when Rand is nil and is recorded in every journal
	// entry. The engine uses it as given, 0 included: choosing a random seed
	// is the caller's job.
	Seed uint64
	// JournalSize is how many firings the journal keeps: 0 means
	// DefaultJournalSize, a negative value keeps none (events are still
	// delivered).
	JournalSize int
	// Signals is the webhook side read by rules with a webhook match. With
	// nil Signals such rules never fire.
	Signals Signals
}

// RuleStatus is a rule as the engine holds it, with its counters.
type RuleStatus struct {
	// Rule is a copy of the rule, ID filled in.
	Rule Rule `json:"rule"`
	// Matched counts the messages the rule's match (and required machine
	// state) held for.
	Matched uint64 `json:"matched"`
	// Fired counts the messages it acted on.
	Fired uint64 `json:"fired"`
	// LetThrough counts the matched messages it did not act on (held back by
	// after, every, probability, times, a machine state that moved, or a
	// ratelimit within its rate).
	LetThrough uint64 `json:"let_through"`
	// Expires is when a rule with For stops applying (zero: never).
	Expires time.Time `json:"expires,omitzero"`
	// Expired reports whether Expires has passed.
	Expired bool `json:"expired,omitempty"`
}

// Engine decides, per message, which rule fires and what the server does.
// It holds the active rules as an immutable snapshot behind an atomic
// pointer: Decide never takes a lock unless a rule fires or needs
// serialising (times, machines, ratelimit, probability), and control changes
// copy the snapshot, swap it, and bump Revision.
//
// An Engine is safe for concurrent use.
type Engine struct {
	clock   Clock
	seed    uint64
	signals Signals
	journal *Journal

	rngMu sync.Mutex
	rng   *rand.Rand

	snap atomic.Pointer[snapshot]
	tx   atomic.Pointer[txTracker] // set once some rule uses transmission

	mu        sync.Mutex // serialises writers
	nextOrder uint64
	nextID    uint64
	scenarios map[string][]Rule
	machines  map[string]*machine
}

// snapshot is one immutable set of active rules, in evaluation order.
type snapshot struct {
	masks    []uint32       // rules[i]'s header mask, 0 when disabled
	hot      []compiledRule // copies of rules, contiguous for Decide
	rules    []*compiledRule
	revision uint64
	scenario string
	needTx   bool // some rule matches on transmission
	needAuth bool // some rule matches on authenticated
}

// NewEngine returns an engine with no rules. An engine starts no goroutines
// and holds no resources: there is nothing to close.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{
		clock:    opts.Clock,
		seed:     opts.Seed,
		signals:  opts.Signals,
		rng:      opts.Rand,
		journal:  newJournal(opts.JournalSize),
		machines: make(map[string]*machine),
	}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	if e.rng == nil {
		e.rng = rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5DEECE66D))
	}
	e.snap.Store(&snapshot{})
	return e
}

// Seed returns the seed given in EngineOptions.
func (e *Engine) Seed() uint64 { return e.seed }

// Journal returns the engine's journal of firings.
func (e *Engine) Journal() *Journal { return e.journal }

// Revision returns the number of control changes made so far. Counters,
// machine states and the journal are not revisions.
func (e *Engine) Revision() uint64 { return e.snap.Load().revision }

// Scenario returns the name of the active scenario: the last one activated,
// or "" when none was or when Replace or Clear has since replaced the set.
func (e *Engine) Scenario() string { return e.snap.Load().scenario }

// Decide returns what to do with p. It walks the enabled, unexpired rules in
// priority order (ties in insertion order) and returns the verdict of the
// first one that fires; the zero Verdict (pass) when none does. For each rule
// whose match holds: the match is counted; After skips the first matches;
// Every picks every Nth of the rest; Probability rolls; Times caps; a
// machine must still be in the required state and moves on; a ratelimit
// lets messages within its rate through and applies Then to the excess.
//
// Decide is safe for concurrent use and allocates nothing when no rule
// fires. With the same seed, the same rules and the same sequence of
// messages from one goroutine, it makes the same decisions.
func (e *Engine) Decide(p *Packet) Verdict {
	s := e.snap.Load()
	if len(s.rules) == 0 {
		return Verdict{}
	}
	key := packetKey(p)
	if key == 0 {
		return Verdict{}
	}
	switch {
	case !s.needAuth:
		key |= bitSigned | bitUnsigned
	case p.HasIntegrity():
		key |= bitSigned
	default:
		key |= bitUnsigned
	}
	tx := 0
	if s.needTx && key&bitChannelData == 0 {
		tx = e.tx.Load().observe(p)
	}
	var now time.Time
	hot := s.hot[:len(s.masks)]
	for i, mask := range s.masks {
		if key&mask != key {
			continue
		}
		r := &hot[i]
		if r.gated {
			if r.expires != 0 {
				if now.IsZero() {
					now = e.clock.Now()
				}
				if now.UnixNano() >= r.expires {
					continue
				}
			}
			if r.requires != nil && *r.machine.state.Load() != *r.requires {
				continue
			}
		}
		// The rule's non-header conditions, only those its need bits name,
		// checked inline: with a hundred rules, a call per rule and checks
		// of absent conditions were most of the cost of a rule that does
		// not match (BenchmarkDecide, BenchmarkDecideByKind).
		if need := r.need; need != 0 {
			m := &r.m
			if need&needSize != 0 && (len(p.Data) < m.minSize || (m.maxSize > 0 && len(p.Data) > m.maxSize)) {
				continue
			}
			if need&needTx != 0 && tx != m.transmission {
				continue
			}
			if need&needSources != 0 {
				if r.src4ok {
					if !p.addrSet {
						p.clientAddr()
					}
					if !p.is4 || p.addr4&r.src4.mask != r.src4.addr {
						continue
					}
				} else if !m.sources.contains(p) {
					continue
				}
			}
			if need&needUsername != 0 {
				if !p.scanned {
					p.scan()
				}
				u := m.username
				if !p.hasUser || (u.anchored && !hasPrefix(p.user, u.lit)) || !u.match(p.user) {
					continue
				}
			}
			if need&needAttrs != 0 && !m.attrsMatch(p) {
				continue
			}
			if need&needWebhook != 0 && !m.webhook.match(e.signals) {
				continue
			}
		}
		if v, ok := e.fire(r, p, now); ok {
			return v
		}
	}
	return Verdict{}
}

// fire applies r's counters and gates to a message r matched, and records
// the firing. now is the zero time when not read yet.
func (e *Engine) fire(r *compiledRule, p *Packet, now time.Time) (Verdict, bool) {
	st := r.st
	n := st.matched.Add(1)
	if n <= r.after || (n-r.after)%r.every != 0 || (r.prob < 1 && !e.roll(r.prob)) {
		st.letThrough.Add(1)
		return Verdict{}, false
	}
	act := &r.act
	stateful := r.times > 0 || r.machine != nil || act.limited
	if stateful {
		if now.IsZero() && act.limited {
			now = e.clock.Now()
		}
		st.mu.Lock()
		ok := r.times == 0 || st.fired.Load() < r.times
		if ok && r.requires != nil {
			ok = *r.machine.state.Load() == *r.requires
		}
		if ok && act.limited {
			if st.take(act, now) {
				ok = false // within the rate: let through
			} else {
				act = act.then
			}
		}
		if ok && r.machine != nil {
			ok = r.machine.advance(r.requires, r.sets)
		}
		if ok {
			st.fired.Add(1)
		}
		st.mu.Unlock()
		if !ok {
			st.letThrough.Add(1)
			return Verdict{}, false
		}
	} else {
		st.fired.Add(1)
	}

	v := Verdict{Kind: act.kind, Rule: r.rule.ID, Action: act.a, Address: act.addr}
	if act.kind == Delay {
		v.Delay = act.delay
		if act.jitter > 0 {
			e.rngMu.Lock()
			j := time.Duration(e.rng.Int64N(int64(2*act.jitter)+1)) - act.jitter
			e.rngMu.Unlock()
			v.Delay = max(v.Delay+j, 0)
		}
	}
	if now.IsZero() {
		now = e.clock.Now()
	}
	v.Seq = e.journal.record(Entry{
		Time:      now,
		Rule:      r.rule.ID,
		Action:    act.kind.String(),
		Code:      act.a.Code,
		Method:    p.methodName(),
		Class:     p.className(),
		Transport: p.Transport.String(),
		Direction: p.Dir.String(),
		Client:    p.Client,
		Size:      len(p.Data),
		Labels:    r.rule.Labels,
		Seed:      e.seed,
	})
	return v, true
}

// roll reports whether an event of probability prob happens.
func (e *Engine) roll(prob float64) bool {
	if prob <= 0 {
		return false
	}
	e.rngMu.Lock()
	x := e.rng.Float64()
	e.rngMu.Unlock()
	return x < prob
}

// take takes a token from the rule's bucket (full at first). st.mu is held.
func (st *ruleState) take(a *compiledAction, now time.Time) bool {
	if !st.filled {
		st.tokens, st.last, st.filled = a.burst, now, true
	} else if el := now.Sub(st.last); el > 0 {
		st.tokens = min(a.burst, st.tokens+el.Seconds()*a.rate)
		st.last = now
	}
	if st.tokens >= 1 {
		st.tokens--
		return true
	}
	return false
}

// Add adds r, or replaces the rule with the same ID (resetting its counters
// and its For, and keeping its place among rules of equal priority). An empty
// ID is generated ("rule-7"). It returns the rule as stored. A rule that
// does not validate is rejected with an error holding *FieldError values.
func (e *Engine) Add(r Rule) (Rule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	if r.ID == "" {
		r.ID = e.newID(s.rules)
	}
	c, err := compile(r)
	if err != nil {
		return Rule{}, fmt.Errorf("faults: rule %q: %w", r.ID, err)
	}
	rules := slices.Clone(s.rules)
	if i := slices.IndexFunc(rules, func(o *compiledRule) bool { return o.rule.ID == r.ID }); i >= 0 {
		c.order = rules[i].order
		rules[i] = c
	} else {
		c.order = e.order()
		rules = append(rules, c)
	}
	e.prepare(c, e.clock.Now())
	e.commit(rules, s.scenario)
	return c.rule.Clone(), nil
}

// Replace swaps the whole rule set for rules, in one revision. Every rule is
// validated first; if any is invalid (or two share an ID) nothing changes and
// the error holds a *FieldError per problem, its Field prefixed with
// "rules[i].". Every rule starts with fresh counters.
func (e *Engine) Replace(rules []Rule) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs, err := e.compileSet("rules", rules)
	if err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	e.commit(cs, "")
	return nil
}

// compileSet compiles a rule set, naming fields prefix[i].field. e.mu is held.
func (e *Engine) compileSet(prefix string, rules []Rule) ([]*compiledRule, error) {
	var errs []error
	out := make([]*compiledRule, 0, len(rules))
	seen := make(map[string]int)
	now := e.clock.Now()
	for i, r := range rules {
		at := fmt.Sprintf("%s[%d].", prefix, i)
		if r.ID != "" {
			if j, dup := seen[r.ID]; dup {
				errs = append(errs, &FieldError{Field: at + "id", Msg: fmt.Sprintf("duplicate id %q (also %s[%d])", r.ID, prefix, j)})
				continue
			}
			seen[r.ID] = i
		}
		c, err := compile(r)
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
	for _, c := range out {
		if c.rule.ID == "" {
			c.rule.ID = e.newID(out)
		}
		c.order = e.order()
		e.prepare(c, now)
	}
	return out, nil
}

// Remove removes the rule with the given ID.
func (e *Engine) Remove(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	rules := slices.DeleteFunc(slices.Clone(s.rules), func(c *compiledRule) bool { return c.rule.ID == id })
	if len(rules) == len(s.rules) {
		return fmt.Errorf("faults: rule %q %w", id, ErrNotFound)
	}
	e.commit(rules, s.scenario)
	return nil
}

// RemoveByLabels removes every rule that has all the given labels and
// returns how many it removed. An empty selector removes nothing: use Clear
// to remove every rule.
func (e *Engine) RemoveByLabels(labels map[string]string) int {
	if len(labels) == 0 {
		return 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	rules := slices.DeleteFunc(slices.Clone(s.rules), func(c *compiledRule) bool { return hasLabels(c.rule.Labels, labels) })
	n := len(s.rules) - len(rules)
	if n > 0 {
		e.commit(rules, s.scenario)
	}
	return n
}

// Clear removes every rule.
func (e *Engine) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.commit(nil, "")
}

// SetEnabled switches the rule with the given ID on or off, keeping its
// counters.
func (e *Engine) SetEnabled(id string, enabled bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.snap.Load()
	i := slices.IndexFunc(s.rules, func(c *compiledRule) bool { return c.rule.ID == id })
	if i < 0 {
		return fmt.Errorf("faults: rule %q %w", id, ErrNotFound)
	}
	rules := slices.Clone(s.rules)
	c := *rules[i] // shares st: counters survive
	rule := *c.rule
	rule.Enabled = &enabled
	c.rule, c.enabled = &rule, enabled
	rules[i] = &c
	e.commit(rules, s.scenario)
	return nil
}

// Get returns the rule with the given ID and its counters.
func (e *Engine) Get(id string) (RuleStatus, error) {
	s := e.snap.Load()
	for _, c := range s.rules {
		if c.rule.ID == id {
			return e.status(c, e.clock.Now()), nil
		}
	}
	return RuleStatus{}, fmt.Errorf("faults: rule %q %w", id, ErrNotFound)
}

// List returns every rule with its counters, in evaluation order.
func (e *Engine) List() []RuleStatus { return e.ListByLabels(nil) }

// ListByLabels returns the rules that have all the given labels (every rule
// for an empty selector), in evaluation order.
func (e *Engine) ListByLabels(labels map[string]string) []RuleStatus {
	s := e.snap.Load()
	now := e.clock.Now()
	out := make([]RuleStatus, 0, len(s.rules))
	for _, c := range s.rules {
		if hasLabels(c.rule.Labels, labels) {
			out = append(out, e.status(c, now))
		}
	}
	return out
}

func (e *Engine) status(c *compiledRule, now time.Time) RuleStatus {
	var expires time.Time
	if c.expires != 0 {
		expires = time.Unix(0, c.expires).In(now.Location())
	}
	return RuleStatus{
		Rule:       c.rule.Clone(),
		Matched:    c.st.matched.Load(),
		Fired:      c.st.fired.Load(),
		LetThrough: c.st.letThrough.Load(),
		Expires:    expires,
		Expired:    c.expires != 0 && now.UnixNano() >= c.expires,
	}
}

// ResetCounters zeroes every rule's counters and refills its rate limit
// bucket. It is not a revision.
func (e *Engine) ResetCounters() {
	for _, c := range e.snap.Load().rules {
		st := c.st
		st.mu.Lock()
		st.matched.Store(0)
		st.fired.Store(0)
		st.letThrough.Store(0)
		st.filled = false
		st.mu.Unlock()
	}
}

// SetScenarios replaces the named rule sets that ActivateScenario can
// activate. The active rules do not change. Every rule is validated first; if
// any is invalid nothing changes and the error holds a *FieldError per
// problem, its Field prefixed with "scenarios.NAME.rules[i].".
func (e *Engine) SetScenarios(scenarios map[string][]Rule) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	stored := make(map[string][]Rule, len(scenarios))
	for _, name := range slices.Sorted(maps.Keys(scenarios)) {
		if !ValidName(name) {
			errs = append(errs, &FieldError{Field: "scenarios." + strconv.Quote(name), Msg: "invalid scenario name (want letters, digits, '_' and '-')"})
			continue
		}
		rules := scenarios[name]
		if _, err := e.compileSet("scenarios."+name+".rules", rules); err != nil {
			errs = append(errs, err)
			continue
		}
		cp := make([]Rule, len(rules))
		for i, r := range rules {
			cp[i] = r.Clone()
		}
		stored[name] = cp
	}
	if len(errs) > 0 {
		return fmt.Errorf("faults: %w", errors.Join(errs...))
	}
	e.scenarios = stored
	s := e.snap.Load()
	e.commit(slices.Clone(s.rules), s.scenario)
	return nil
}

// Scenarios returns the names of the scenarios SetScenarios stored, sorted.
func (e *Engine) Scenarios() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Sorted(maps.Keys(e.scenarios))
}

// ActivateScenario replaces the active rules with the named scenario's, in
// one revision, with fresh counters and For starting now. Machine states are
// kept (see ResetMachines).
func (e *Engine) ActivateScenario(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	rules, ok := e.scenarios[name]
	if !ok {
		return fmt.Errorf("faults: scenario %q %w", name, ErrNotFound)
	}
	cs, err := e.compileSet("scenarios."+name+".rules", rules)
	if err != nil {
		return fmt.Errorf("faults: %w", err) // validated by SetScenarios: cannot happen
	}
	e.commit(cs, name)
	return nil
}

// MachineStates returns the state of every machine the rules have named or
// SetMachineState has set.
func (e *Engine) MachineStates() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.machines))
	for name, m := range e.machines {
		out[name] = *m.state.Load()
	}
	return out
}

// SetMachineState moves the named machine to state, creating the machine if
// no rule named it yet. It is not a revision. Both names must be non-empty.
func (e *Engine) SetMachineState(machine, state string) error {
	if machine == "" || state == "" {
		return errors.New("faults: machine and state must not be empty")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.machine(machine).state.Store(&state)
	return nil
}

// ResetMachines moves every machine back to its start state, "started".
func (e *Engine) ResetMachines() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.machines {
		s := machineStart
		m.state.Store(&s)
	}
}

// machine returns the named machine, creating it. e.mu is held.
func (e *Engine) machine(name string) *machine {
	m, ok := e.machines[name]
	if !ok {
		m = newMachine()
		e.machines[name] = m
	}
	return m
}

// prepare binds c to the engine: expiry and machine. e.mu is held.
func (e *Engine) prepare(c *compiledRule, now time.Time) {
	if c.rule.For > 0 {
		c.expires = now.Add(c.rule.For.D()).UnixNano()
	}
	if c.rule.Machine != "" {
		c.machine = e.machine(c.rule.Machine)
	}
	c.gated = c.expires != 0 || c.requires != nil
}

// order returns the next insertion number. e.mu is held.
func (e *Engine) order() uint64 {
	e.nextOrder++
	return e.nextOrder
}

// newID returns a generated ID that no rule in rules has. e.mu is held.
func (e *Engine) newID(rules []*compiledRule) string {
	for {
		e.nextID++
		id := "rule-" + strconv.FormatUint(e.nextID, 10)
		if !slices.ContainsFunc(rules, func(c *compiledRule) bool { return c.rule.ID == id }) {
			return id
		}
	}
}

// commit sorts rules into evaluation order and publishes them as the next
// revision. e.mu is held.
func (e *Engine) commit(rules []*compiledRule, scenario string) {
	slices.SortStableFunc(rules, func(a, b *compiledRule) int {
		return cmp.Or(cmp.Compare(a.rule.Priority, b.rule.Priority), cmp.Compare(a.order, b.order))
	})
	s := &snapshot{
		rules:    rules,
		masks:    make([]uint32, len(rules)),
		hot:      make([]compiledRule, len(rules)),
		revision: e.snap.Load().revision + 1,
		scenario: scenario,
	}
	for i, c := range rules {
		s.hot[i] = *c
		if c.enabled {
			s.masks[i] = c.mask
		}
		if c.m.transmission > 0 {
			s.needTx = true
		}
		if c.rule.Match.Authenticated != nil {
			s.needAuth = true
		}
	}
	if s.needTx && e.tx.Load() == nil {
		e.tx.Store(new(txTracker))
	}
	e.snap.Store(s)
}

// hasPrefix is bytes.HasPrefix that compares the first byte before calling
// into the runtime: most usernames a rule does not want differ there.
func hasPrefix(b, prefix []byte) bool {
	if len(prefix) == 0 {
		return true
	}
	return len(b) >= len(prefix) && b[0] == prefix[0] && string(b[:len(prefix)]) == string(prefix)
}
