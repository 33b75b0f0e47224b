package faults

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// compiledRule is a validated Rule turned into what Decide evaluates. It is
// immutable once in a snapshot, except for st, which it shares with the other
// snapshots the same rule appears in (counters survive SetEnabled and other
// rules' changes, and are reset only when the rule itself is replaced).
type compiledRule struct {
	// Decide reads these for every rule whose header mask holds, in this
	// order: they come first, to share cache lines.
	expires  int64    // Unix nanoseconds on the engine's Clock; 0: never (set by the engine)
	machine  *machine // nil: not part of a state machine (set by the engine)
	requires *string  // nil: any state
	m        matcher
	sets     *string // nil: leaves the state alone

	prob                float64
	times, after, every uint64
	act                 compiledAction
	st                  *ruleState

	rule     *Rule // a private deep copy, ID set; never modified once published
	enabled  bool
	automata int    // bytes its patterns hold (see MaxRuleSetAutomata)
	order    uint64 // insertion order (set by the engine)
}

// compiledAction is an Action with its parameters parsed.
type compiledAction struct {
	a      *Action // normalised copy: defaults filled in
	kind   ActionKind
	addr   netip.AddrPort
	delay  time.Duration
	jitter time.Duration

	// ratelimit only: the token bucket's parameters and the action for the
	// excess.
	limited bool
	rate    float64
	burst   float64
	then    *compiledAction
}

// ruleState is the mutable side of a rule: counters, and what the firing
// decision serialises on.
type ruleState struct {
	retired    chan struct{} // closed when the rule leaves the active set
	matched    atomic.Uint64
	fired      atomic.Uint64
	letThrough atomic.Uint64

	// mu serialises the firing decision of rules that need it (times,
	// machines, ratelimit), so a cap or a transition is never overshot.
	mu      sync.Mutex
	limiter *rate.Limiter // ratelimit bucket, under mu; nil until first used
}

// compile validates r and builds its matchers. The rule is deep-copied: the
// caller may reuse r.
func compile(r Rule) (*compiledRule, error) {
	var v ruleValidator
	if v.check(&r); len(v.errs) > 0 {
		return nil, v.err()
	}
	r = r.Clone()
	c := &compiledRule{
		rule:    &r,
		enabled: r.IsEnabled(),
		prob:    r.chance(),
		times:   uint64(r.Times),
		after:   uint64(r.After),
		every:   uint64(r.Every),
		st:      &ruleState{retired: make(chan struct{})},
	}
	if c.every == 0 {
		c.every = 1
	}
	if r.Machine != "" {
		if r.RequiresState != "" {
			c.requires = &c.rule.RequiresState
		}
		if r.SetsState != "" {
			c.sets = &c.rule.SetsState
		}
	}

	var err error
	if c.m, err = compileMatch(&c.rule.Match, v.patterns); err != nil {
		return nil, err
	}
	c.automata = c.m.automata()
	if c.act, err = compileAction(&c.rule.Action); err != nil {
		return nil, err
	}
	return c, nil
}

// compileMatch builds the header mask and the list of the other
// conditions, cheapest first. Validate has checked the syntax, and
// compiled the patterns, by field; errors here are defensive.
func compileMatch(m *Match, patterns map[string]*Pattern) (matcher, error) {
	pattern := func(field, expr string) (*Pattern, error) {
		if p := patterns[field]; p != nil && p.expr == expr {
			return p, nil
		}
		return CompilePattern(expr)
	}
	var out matcher
	out.mask = headerMask(m)
	var sources []netip.Prefix
	field := "match.sources"
	list := m.Sources
	if m.Leg == LegPeer {
		out.mask = 0 // never in the client leg's index: see snapshot.peer
		field, list = "match.peers", m.Peers
		if len(m.RelayPorts) > 0 {
			c := cond{kind: condRelayPorts}
			for _, p := range m.RelayPorts {
				c.ports = append(c.ports, uint16(p)) //nolint:gosec // validated to 1-65535
			}
			out.conds = append(out.conds, c)
		}
	}
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return out, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Msg: err.Error()}
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		sources = append(sources, p.Masked())
	}
	if sources != nil {
		out.conds = append(out.conds, cond{kind: condSources, sources: newSourceSet(sources)})
	}
	if m.MinSize > 0 || m.MaxSize > 0 {
		out.conds = append(out.conds, cond{kind: condSize, min: m.MinSize, max: m.MaxSize})
	}
	if m.Transmission > 0 {
		out.conds = append(out.conds, cond{kind: condTransmission, min: m.Transmission})
	}
	var err error
	if m.Username != "" {
		u, err := pattern("match.username", m.Username)
		if err != nil {
			return out, &FieldError{Field: "match.username", Msg: err.Error()}
		}
		out.conds = append(out.conds, cond{kind: condUsername, pattern: u})
	}
	for i := range m.Attributes {
		a := &m.Attributes[i]
		field := fmt.Sprintf("match.attributes[%d]", i)
		am := new(attrMatcher)
		if am.typ, err = parseAttributeType(a.Type); err != nil {
			return out, &FieldError{Field: field + ".type", Msg: err.Error()}
		}
		am.absent = a.Present != nil && !*a.Present
		if a.Contains != "" {
			am.contains = []byte(a.Contains)
		}
		if a.Regex != "" {
			if am.regex, err = pattern(field+".regex", a.Regex); err != nil {
				return out, &FieldError{Field: field + ".regex", Msg: err.Error()}
			}
		}
		am.minLen, am.maxLen = a.MinLen, a.MaxLen
		out.conds = append(out.conds, cond{kind: condAttribute, attr: am})
	}
	if m.MinUserAllocations > 0 {
		out.conds = append(out.conds, cond{kind: condUserAllocs, min: m.MinUserAllocations})
	}
	if m.MinAllocations > 0 {
		out.conds = append(out.conds, cond{kind: condAllocs, min: m.MinAllocations})
	}
	if w := m.Webhook; w != nil {
		wm := &webhookMatcher{
			name:        w.Name,
			minInflight: w.MinInflight,
			minPending:  w.MinPending,
			q: WebhookQuery{
				MinBodyBytes:   w.MinBodyBytes,
				MinHeaderBytes: w.MinHeaderBytes,
				Window:         w.Window.D(),
			},
		}
		if w.Body != "" {
			if wm.q.Body, err = pattern("match.webhook.body", w.Body); err != nil {
				return out, &FieldError{Field: "match.webhook.body", Msg: err.Error()}
			}
		}
		// A webhook section with no count condition means "a request is
		// held now (or ended within the window)".
		wm.recent = wm.q.Body != nil || wm.q.MinBodyBytes > 0 || wm.q.MinHeaderBytes > 0 ||
			wm.q.Window > 0 || (wm.minInflight == 0 && wm.minPending == 0)
		out.conds = append(out.conds, cond{kind: condWebhook, webhook: wm})
	}
	return out, nil
}

// headerMask returns the key mask of m's header conditions (see
// the key bits in match.go): every value m accepts in each group.
func headerMask(m *Match) uint32 {
	var methods, classes, dirs, transports uint32
	for _, s := range m.Methods {
		methods |= methodBits[s]
	}
	if methods == 0 {
		methods = maskSTUNMethods
	}
	for _, s := range m.Classes {
		classes |= classBits[s]
	}
	if classes == 0 {
		classes = maskClasses
	}
	classes |= bitNoClass
	dirs = bitIn
	if m.Direction == "out" {
		dirs = bitOut
	}
	for _, s := range m.Transports {
		switch s {
		case "udp":
			transports |= bitUDP
		case "tcp":
			transports |= bitTCP
		}
	}
	if transports == 0 {
		transports = bitUDP | bitTCP
	}
	signed := bitSigned | bitUnsigned
	if m.Authenticated != nil {
		signed = bitUnsigned
		if *m.Authenticated {
			signed = bitSigned
		}
	}
	return methods | classes | dirs | transports | signed
}

func cloneAction(a Action) Action {
	if a.Then != nil {
		t := cloneAction(*a.Then)
		a.Then = &t
	}
	return a
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
