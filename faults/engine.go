package faults

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrNotFound is wrapped by the errors of operations on a rule or scenario
// that does not exist.
var ErrNotFound = errors.New("not found")

// EngineOptions configures an [Engine]. The zero value is usable.
type EngineOptions struct {
	// Clock times rule expiry (for), rate limits and journal entries.
	// Nil means SystemClock.
	Clock Clock
	// Seed seeds the PCG source of every probabilistic decision
	// (probability, jitter) and is recorded in every journal entry: the same
	// seed and the same messages give the same decisions. The engine uses
	// it as given, 0 included: choosing a random seed is the caller's job.
	Seed uint64
	// JournalSize is how many firings the journal keeps: 0 means
	// DefaultJournalSize, a negative value keeps none (events are still
	// delivered).
	JournalSize int
	// Signals is the webhook side read by rules with a webhook match. With
	// nil Signals such rules never fire.
	Signals Signals
	// Holder, when set, is asked for room before a delay is decided: when
	// it has none, the message passes at once as DelayOverflow. Nil means
	// room is never short.
	Holder Holder
	// Allocations counts live TURN allocations for rules with
	// min_user_allocations or min_allocations. With nil Allocations such
	// rules never fire.
	Allocations AllocationCounter
}

// AllocationCounter is the TURN side read by rules with
// Match.MinUserAllocations or Match.MinAllocations. The server implements
// it from its allocation table. Its methods are called on the packet path,
// concurrently, and must be cheap.
type AllocationCounter interface {
	// UserAllocations returns the live allocations made with this USERNAME.
	UserAllocations(username []byte) int
	// Allocations returns the live allocations in all.
	Allocations() int
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
	allocs  AllocationCounter
	journal *Journal
	holder  Holder

	rngMu sync.Mutex
	rng   *rand.Rand

	snap atomic.Pointer[snapshot]
	tx   atomic.Pointer[txTracker] // set once some rule uses transmission

	mu        sync.Mutex // serialises writers
	nextOrder uint64
	nextID    uint64
	scenarios map[string]Scenario
	timeline  *timeline // the timed scenario running, if any
	machines  map[machineID]*machine
	// scenariosRev counts the changes to scenarios: ActivateScenario
	// compiles with the lock released and checks it has not moved.
	scenariosRev uint64

	// compileHook, set by tests before the engine is used, runs at the
	// start of every rule's compilation (see compileRule).
	compileHook func(*Rule)
}

// snapshot is one immutable set of active rules, in evaluation order.
type snapshot struct {
	rules    []compiledRule
	index    *ruleIndex // rules' enabled rules by header (nil: no rules)
	peer     [2][]int32 // enabled peer-leg rules by direction (In, Out), in evaluation order
	revision uint64
	scenario string
	needTx   bool // some rule matches on transmission
}

// NewEngine returns an engine with no rules. An engine starts no goroutines
// and holds no resources: there is nothing to close.
func NewEngine(opts EngineOptions) *Engine {
	e := &Engine{
		clock:    opts.Clock,
		seed:     opts.Seed,
		signals:  opts.Signals,
		allocs:   opts.Allocations,
		holder:   opts.Holder,
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5DEECE66D)),
		journal:  newJournal(opts.JournalSize),
		machines: make(map[machineID]*machine),
	}
	if e.clock == nil {
		e.clock = SystemClock{}
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
	tx := 0
	if s.needTx && p.Leg == ClientLeg && p.IsSTUN() {
		tx = e.tx.Load().observe(p)
	}
	// Only the rules whose header conditions hold: the index (index.go)
	// applied them when the snapshot was built.
	var bucket []int32
	if p.Leg == PeerLeg {
		bucket = s.peer[p.Dir&1]
	} else {
		bucket = s.index.bucket(p)
	}
	var now time.Time
	rules := s.rules
rules:
	for _, i := range bucket {
		r := &rules[i]
		if r.expires != 0 {
			if now.IsZero() {
				now = e.clock.Now()
			}
			if now.UnixNano() >= r.expires {
				continue
			}
		}
		if r.requires != nil && !r.machine.in(p, *r.requires) {
			continue
		}
		// The rule's other conditions, inline: with a hundred rules, a call
		// per rule was most of the cost of one that does not match
		// (BenchmarkDecide, BenchmarkDecideByKind).
		for j := range r.m.conds {
			c := &r.m.conds[j]
			switch c.kind {
			case condSources: // IPv4-mapped IPv6 clients count as IPv4
				if !p.addrSet {
					p.clientAddr()
				}
				if p.is4 {
					if !c.sources.contains4(p.addr4) {
						continue rules
					}
				} else if !c.sources.containsOther(p.addr) {
					continue rules
				}
			case condSize:
				if len(p.Data) < c.min || (c.max > 0 && len(p.Data) > c.max) {
					continue rules
				}
			case condTransmission:
				if tx != c.min {
					continue rules
				}
			case condUsername:
				if !p.scanned {
					p.scan()
				}
				if !p.hasUser || c.pattern.rejects(p.user) || !c.pattern.matchRest(p.user) {
					continue rules
				}
			case condAttribute:
				if !c.attr.match(p) {
					continue rules
				}
			case condWebhook:
				if !c.webhook.match(e.signals) {
					continue rules
				}
			case condUserAllocs:
				if !p.scanned {
					p.scan()
				}
				if e.allocs == nil || !p.hasUser || e.allocs.UserAllocations(p.user) < c.min {
					continue rules
				}
			case condAllocs:
				if e.allocs == nil || e.allocs.Allocations() < c.min {
					continue rules
				}
			case condRelayPorts:
				if !slices.Contains(c.ports, p.Relay.Port()) {
					continue rules
				}
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
			ok = r.machine.in(p, *r.requires)
		}
		if ok && act.limited {
			if st.take(act, now) {
				ok = false // within the rate: let through
			} else {
				act = act.then
			}
		}
		if ok && r.machine != nil {
			ok = r.machine.step(p, r.requires, r.sets)
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

	v := Verdict{Kind: act.kind, Rule: r.rule.ID, Action: act.a, Address: act.addr, Retired: st.retired}
	if act.kind == Delay {
		e.hold(&v, act, p)
	}
	if now.IsZero() {
		now = e.clock.Now()
	}
	v.Seq = e.journal.record(Entry{
		Time:      now,
		Rule:      r.rule.ID,
		Action:    v.Kind.String(),
		Code:      act.a.Code,
		Method:    p.methodName(),
		Class:     p.className(),
		Leg:       p.legName(),
		Relay:     p.Relay,
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

// take takes a token from the rule's bucket (full at first) at now, the
// engine Clock's time. st.mu is held.
func (st *ruleState) take(a *compiledAction, now time.Time) bool {
	if st.limiter == nil {
		st.limiter = rate.NewLimiter(rate.Limit(a.rate), int(a.burst))
	}
	return st.limiter.AllowN(now, 1)
}

// Get returns the rule with the given ID and its counters.
func (e *Engine) Get(id string) (RuleStatus, error) {
	s := e.snap.Load()
	if i := find(s.rules, id); i >= 0 {
		return e.status(&s.rules[i], e.clock.Now()), nil
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
	for i := range s.rules {
		if c := &s.rules[i]; hasLabels(c.rule.Labels, labels) {
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
	s := e.snap.Load()
	for i := range s.rules {
		st := s.rules[i].st
		st.mu.Lock()
		st.matched.Store(0)
		st.fired.Store(0)
		st.letThrough.Store(0)
		st.limiter = nil // full again at the next message
		st.mu.Unlock()
	}
}

// MachineStates returns the state of every machine the rules have named or
// SetMachineState has set. A keyed machine (Rule.MachineKey) is listed as
// "NAME[*]" with the state of the keys it does not remember, and as
// "NAME[KEY]" for each key it remembers (KEY is "udp 127.0.0.1:5000" for a
// client, or the username).
func (e *Engine) MachineStates() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.machines))
	for id, m := range e.machines {
		if m.keyed == nil {
			out[id.name] = *m.state.Load()
			continue
		}
		out[id.name+"[*]"] = *m.state.Load()
		for k, st := range m.keyed.states() {
			out[id.name+"["+k+"]"] = st
		}
	}
	return out
}

// SetMachineState moves the named machine to state, creating the machine if
// no rule named it yet; a keyed machine of that name forgets every key, so
// every client (or user) is in state. It is not a revision. Both names must
// be non-empty.
func (e *Engine) SetMachineState(machine, state string) error {
	if machine == "" || state == "" {
		return errors.New("faults: machine and state must not be empty")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.machine(machine, "").reset(state)
	for id, m := range e.machines {
		if id.name == machine {
			m.reset(state)
		}
	}
	return nil
}

// ResetMachines moves every machine (every key of a keyed one) back to its
// start state, "started".
func (e *Engine) ResetMachines() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.machines {
		m.reset(machineStart)
	}
}

// machineID names a machine: rules naming the same machine with different
// MachineKeys name different machines.
type machineID struct{ name, key string }

// machine returns the named machine of that key kind, creating it. e.mu is
// held.
func (e *Engine) machine(name, key string) *machine {
	id := machineID{name, key}
	m, ok := e.machines[id]
	if !ok {
		m = newMachine(key)
		e.machines[id] = m
	}
	return m
}

// prepare binds c to the engine: expiry and machine. e.mu is held.
func (e *Engine) prepare(c *compiledRule, now time.Time) {
	if c.rule.For > 0 {
		c.expires = now.Add(c.rule.For.D()).UnixNano()
	}
	if c.rule.Machine != "" {
		c.machine = e.machine(c.rule.Machine, c.rule.MachineKey)
	}
}

// order returns the next insertion number. e.mu is held.
func (e *Engine) order() uint64 {
	e.nextOrder++
	return e.nextOrder
}
