package faults

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"runtime"
	"sync"
	"weak"
)

// A packet's header facts, one bit per value in five groups (method, class,
// direction, transport, signed): a packet has one bit in each group, and a
// rule's mask holds every value it accepts in each group. The packet matches
// the header conditions when key&mask == key. The rule index (index.go)
// applies this test once per header combination when a snapshot is built,
// so Decide never does.
const (
	bitBinding uint32 = 1 << iota
	bitAllocate
	bitRefresh
	bitSend
	bitData
	bitCreatePermission
	bitChannelBind
	bitChannelData
	bitOtherMethod // a STUN method stunfault has no name for

	bitRequest
	bitIndication
	bitSuccess
	bitErrorClass
	bitNoClass // ChannelData has no class: no class condition excludes it

	bitIn
	bitOut

	bitUDP
	bitTCP

	bitSigned   // carries MESSAGE-INTEGRITY(-SHA256)
	bitUnsigned // does not

	maskSTUNMethods = bitBinding | bitAllocate | bitRefresh | bitSend | bitData |
		bitCreatePermission | bitChannelBind | bitOtherMethod
	maskClasses = bitRequest | bitIndication | bitSuccess | bitErrorClass | bitNoClass
)

// methodBits maps rule method names to key bits.
var methodBits = map[string]uint32{
	"binding":          bitBinding,
	"allocate":         bitAllocate,
	"refresh":          bitRefresh,
	"send":             bitSend,
	"data":             bitData,
	"createpermission": bitCreatePermission,
	"channelbind":      bitChannelBind,
	"channeldata":      bitChannelData,
}

// classBits maps rule class names to key bits.
var classBits = map[string]uint32{
	"request":    bitRequest,
	"indication": bitIndication,
	"success":    bitSuccess,
	"error":      bitErrorClass,
}

// matcher is a compiled [Match]: its header conditions as one mask (see
// the key bits above), and the other conditions as a list holding only
// those the rule has, in the order Decide checks them (cheapest first), so
// a rule pays for the conditions it has and no others. Decide is the one
// place they are evaluated. The rule index (index.go) buckets rules by the
// mask, so Decide meets a rule only when its header conditions hold.
type matcher struct {
	mask  uint32
	conds []cond
}

// condKind is the kind of one non-header condition.
type condKind uint8

const (
	condSources      condKind = iota // sources
	condSize                         // min, max: whole-message bytes (max 0: no bound)
	condTransmission                 // min: which copy of a transaction
	condUsername                     // pattern on USERNAME
	condAttribute                    // attr
	condWebhook                      // webhook
	condUserAllocs                   // min: live allocations of the USERNAME
	condAllocs                       // min: live allocations in all
	condRelayPorts                   // ports: the relayed address's port (peer leg)
)

// cond is one non-header condition. Only the fields of its kind are set.
type cond struct {
	kind     condKind
	min, max int
	sources  sourceSet
	pattern  *Pattern
	attr     *attrMatcher
	webhook  *webhookMatcher
	ports    []uint16
}

// attrMatcher is a compiled [AttributeMatch].
type attrMatcher struct {
	typ            uint16
	absent         bool // present = false
	contains       []byte
	regex          *Pattern
	minLen, maxLen int
}

// sourceSet is a compiled Match.Sources: IPv4 networks as numbers (the
// common case, checked with a mask), others as prefixes.
type sourceSet struct {
	v4    []ipv4Net
	other []netip.Prefix
}

type ipv4Net struct{ addr, mask uint32 }

func newSourceSet(ps []netip.Prefix) sourceSet {
	var s sourceSet
	for _, p := range ps {
		if p.Addr().Is4() {
			mask := uint32(0)
			if p.Bits() > 0 {
				mask = ^uint32(0) << (32 - p.Bits())
			}
			a := p.Addr().As4()
			s.v4 = append(s.v4, ipv4Net{addr: binary.BigEndian.Uint32(a[:]) & mask, mask: mask})
		} else {
			s.other = append(s.other, p)
		}
	}
	return s
}

// contains4 reports whether a, an IPv4 address as a number, lies in the
// set. It is small enough to be inlined in Decide.
func (s *sourceSet) contains4(a uint32) bool {
	for _, n := range s.v4 {
		if a&n.mask == n.addr {
			return true
		}
	}
	return false
}

// containsOther reports whether a, an IPv6 address, lies in the set.
func (s *sourceSet) containsOther(a netip.Addr) bool {
	for _, n := range s.other {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func (a *attrMatcher) match(p *Packet) bool {
	if !p.mayHave(a.typ) {
		return a.absent
	}
	v, ok := p.Attr(a.typ)
	if a.absent {
		return !ok
	}
	if !ok {
		return false
	}
	if a.minLen > 0 && len(v) < a.minLen {
		return false
	}
	if a.maxLen > 0 && len(v) > a.maxLen {
		return false
	}
	if a.contains != nil && !bytes.Contains(v, a.contains) {
		return false
	}
	if a.regex != nil && !a.regex.Match(v) {
		return false
	}
	return true
}

// The bounds on a regular expression in a rule (match.username,
// match.attributes[i].regex, match.webhook.body). A pattern is matched by
// an automaton (automaton.go) that costs a few nanoseconds per input byte
// at most, whatever the pattern; these bounds and MaxPatternTransitions bound what
// compiling it costs and the memory it holds.
const (
	// MaxPatternBytes bounds a regular expression's source.
	MaxPatternBytes = 1024
	// MaxPatternInsts bounds its compiled program (regexp/syntax
	// instructions after simplification): repetitions such as .{0,500}
	// expand to one copy per count. It bounds the work of building the
	// automaton.
	MaxPatternInsts = 2048
	// MaxAttributeMatches bounds a rule's match.attributes, and
	// MaxAttributeRegexes those of them with a regex, so a rule runs at
	// most 1 + MaxAttributeRegexes patterns on a message (its webhook body
	// pattern scans each held request once).
	MaxAttributeMatches = 8
	MaxAttributeRegexes = 2
)

// clipPattern shortens expr for an error message.
func clipPattern(expr string) string {
	if len(expr) > 40 {
		return expr[:40] + "..."
	}
	return expr
}

// A Pattern is a regular expression of a rule (match.username,
// match.attributes[i].regex, match.webhook.body), compiled to answer one
// question: does it match anywhere in a message's bytes, as
// [regexp.Regexp.Match] would answer (Go's RE2 syntax, Perl flags). It
// answers in time linear in the input and independent of the expression,
// a few nanoseconds per byte at most, so no accepted rule can slow the
// packet path. It is safe for concurrent use. Make one with
// [CompilePattern]: the zero Pattern is not ready for use.
type Pattern struct {
	expr            string
	compiledPattern                  // a copy of shared: Decide reads it without an indirection
	shared          *compiledPattern // what patternCache holds weakly, kept alive by its Patterns
}

// compiledPattern is what a Pattern is compiled to. Patterns compiled from
// the same expression while one is alive share it (see patternCache).
type compiledPattern struct {
	dfa      *automaton
	lit      []byte // must occur in every match (at the start when anchored)
	complete bool   // the expression is exactly lit (or ^lit when anchored)
	anchored bool   // the expression starts with ^ (not in multi-line mode)
}

// CompilePattern compiles expr within the bounds a rule's patterns have
// (MaxPatternBytes, MaxPatternInsts, MaxPatternTransitions), or returns an
// error saying what is wrong: the same check [Rule.Validate] makes.
func CompilePattern(expr string) (*Pattern, error) {
	if len(expr) > MaxPatternBytes {
		return nil, fmt.Errorf("regular expression of %d bytes, at most %d", len(expr), MaxPatternBytes)
	}
	c, err := patterns.compile(expr)
	if err != nil {
		return nil, err
	}
	return &Pattern{expr: expr, compiledPattern: *c, shared: c}, nil
}

// compilePattern is CompilePattern without the length check and the cache.
func compilePattern(expr string) (*compiledPattern, error) {
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = se.Code.String()
		}
		return nil, fmt.Errorf("invalid regular expression %q: %s", clipPattern(expr), msg)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", clipPattern(expr), err)
	}
	if n := len(prog.Inst); n > MaxPatternInsts {
		return nil, fmt.Errorf("regular expression %q compiles to %d instructions, at most %d (use fewer or smaller repetitions, such as {1,20} instead of {1,500})", clipPattern(expr), n, MaxPatternInsts)
	}
	dfa, err := buildAutomaton(prog)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q %v: use fewer or smaller repetitions, or fewer alternatives", clipPattern(expr), err)
	}
	c := &compiledPattern{dfa: dfa}
	if re, err := regexp.Compile(expr); err == nil {
		lit, complete := re.LiteralPrefix()
		c.lit, c.complete = []byte(lit), complete
		if tree.Op == syntax.OpConcat && len(tree.Sub) > 0 && tree.Sub[0].Op == syntax.OpBeginText && lit != "" {
			c.anchored = true
			c.complete = len(tree.Sub) == 2 && tree.Sub[1].Op == syntax.OpLiteral && tree.Sub[1].Flags&syntax.FoldCase == 0
		}
	}
	return c, nil
}

// patterns shares compiled patterns by expression, holding them weakly: a
// rule set with one expression in many rules compiles it once, and so do
// Validate and then compile. An entry goes when its pattern is collected,
// so the cache holds no more than the live rules do. Rules are compiled
// outside the engine's lock, concurrently: a caller that wants an
// expression another is compiling waits for that one instead of building
// a second automaton.
var patterns patternCache

type patternCache struct {
	mu       sync.Mutex
	m        map[string]weak.Pointer[compiledPattern]
	building map[string]*patternBuild // expressions being compiled, under mu
}

// patternBuild is one compilation in progress: c and err are set before
// done is closed.
type patternBuild struct {
	done chan struct{}
	c    *compiledPattern
	err  error
}

// compile returns expr's compiled pattern: the live one, the one another
// goroutine is compiling, or a new one.
func (pc *patternCache) compile(expr string) (*compiledPattern, error) {
	pc.mu.Lock()
	if c := pc.m[expr].Value(); c != nil {
		pc.mu.Unlock()
		return c, nil
	}
	if b := pc.building[expr]; b != nil {
		pc.mu.Unlock()
		<-b.done
		return b.c, b.err
	}
	// Waiters read this error only if compilePattern panics.
	b := &patternBuild{done: make(chan struct{}), err: fmt.Errorf("regular expression %q could not be compiled", clipPattern(expr))}
	if pc.building == nil {
		pc.building = make(map[string]*patternBuild)
	}
	pc.building[expr] = b
	pc.mu.Unlock()
	defer func() {
		pc.mu.Lock()
		delete(pc.building, expr)
		if b.c != nil {
			pc.put(expr, b.c)
		}
		pc.mu.Unlock()
		close(b.done)
	}()
	b.c, b.err = compilePattern(expr)
	return b.c, b.err
}

// put caches c as expr's compiled pattern. pc.mu is held.
func (pc *patternCache) put(expr string, c *compiledPattern) {
	if pc.m == nil {
		pc.m = make(map[string]weak.Pointer[compiledPattern])
	}
	pc.m[expr] = weak.Make(c)
	runtime.AddCleanup(c, pc.drop, expr)
}

// drop forgets expr once its compiled pattern is collected (unless it was
// compiled again meanwhile).
func (pc *patternCache) drop(expr string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m[expr].Value() == nil {
		delete(pc.m, expr)
	}
}

// String returns the expression the Pattern was compiled from.
func (p *Pattern) String() string { return p.expr }

// Match reports whether b holds a match of p.
func (p *Pattern) Match(b []byte) bool {
	return !p.rejects(b) && p.matchRest(b)
}

// rejects reports whether b cannot match because it lacks the anchored
// literal prefix: the common rejection, small enough to be inlined where
// it is called (Decide, on every message a username rule sees). It
// compares the first byte before bytes.HasPrefix calls into the runtime:
// most usernames a rule does not want differ there.
func (p *Pattern) rejects(b []byte) bool {
	return p.anchored && (len(b) == 0 || b[0] != p.lit[0] || !bytes.HasPrefix(b, p.lit))
}

// matchRest is Match for a b that rejects let through. A literal is
// looked for with bytes.Contains, faster than the automaton.
func (p *Pattern) matchRest(b []byte) bool {
	switch {
	case p.anchored && p.complete:
		return true
	case p.anchored:
	case p.complete:
		return bytes.Contains(b, p.lit)
	case len(p.lit) > 0 && !bytes.Contains(b, p.lit):
		return false
	}
	return p.dfa.match(b)
}
