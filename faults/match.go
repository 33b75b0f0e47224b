package faults

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"regexp"
	"regexp/syntax"
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
	pattern  *pattern
	attr     *attrMatcher
	webhook  *webhookMatcher
	ports    []uint16
}

// attrMatcher is a compiled [AttributeMatch].
type attrMatcher struct {
	typ            uint16
	absent         bool // present = false
	contains       []byte
	regex          *pattern
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
	if a.regex != nil && !a.regex.match(v) {
		return false
	}
	return true
}

// The bounds on a regular expression in a rule (match.username,
// match.attributes[i].regex, match.webhook.body). Go's regexp runs in time
// linear in the input, but its constant is the compiled program's size:
// about 25 ns per instruction and byte in the worst case. Bounding the
// program bounds what one message can cost (BenchmarkDecideWorstRule).
const (
	// MaxPatternBytes bounds a regular expression's source.
	MaxPatternBytes = 1024
	// MaxPatternInsts bounds its compiled program (regexp/syntax
	// instructions after simplification): repetitions such as .{0,500}
	// expand to one copy per count.
	MaxPatternInsts = 2048
)

// patternInsts returns the size of expr's compiled program (0 when it does
// not parse).
func patternInsts(expr string) int {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	return len(prog.Inst)
}

// clipPattern shortens expr for an error message.
func clipPattern(expr string) string {
	if len(expr) > 40 {
		return expr[:40] + "..."
	}
	return expr
}

// pattern is a compiled regular expression that skips the regexp machine
// when the expression's literal prefix rules a match out, or when the
// expression is only a literal. For an expression anchored at the start
// ("^carol"), the literal must be a prefix: a cheap HasPrefix instead of a
// search (usernames are matched this way on every message).
type pattern struct {
	re       *regexp.Regexp
	lit      []byte // must occur in every match (at the start when anchored)
	complete bool   // the expression is exactly lit (or ^lit when anchored)
	anchored bool   // the expression starts with ^ (not in multi-line mode)
}

func compilePattern(expr string) (*pattern, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	lit, complete := re.LiteralPrefix()
	p := &pattern{re: re, lit: []byte(lit), complete: complete}
	if tree, err := syntax.Parse(expr, syntax.Perl); err == nil && tree.Op == syntax.OpConcat &&
		len(tree.Sub) > 0 && tree.Sub[0].Op == syntax.OpBeginText && lit != "" {
		p.anchored = true
		p.complete = len(tree.Sub) == 2 && tree.Sub[1].Op == syntax.OpLiteral && tree.Sub[1].Flags&syntax.FoldCase == 0
	}
	return p, nil
}

// match reports whether b matches.
func (p *pattern) match(b []byte) bool {
	return !p.rejects(b) && p.matchRest(b)
}

// rejects reports whether b cannot match because it lacks the anchored
// literal prefix: the common rejection, small enough to be inlined where
// it is called (Decide, on every message a username rule sees). It
// compares the first byte before bytes.HasPrefix calls into the runtime:
// most usernames a rule does not want differ there.
func (p *pattern) rejects(b []byte) bool {
	return p.anchored && (len(b) == 0 || b[0] != p.lit[0] || !bytes.HasPrefix(b, p.lit))
}

// matchRest is match for a b that rejects let through.
func (p *pattern) matchRest(b []byte) bool {
	switch {
	case p.anchored:
		return p.complete || p.re.Match(b)
	case p.complete:
		return bytes.Contains(b, p.lit)
	case len(p.lit) > 0 && !bytes.Contains(b, p.lit):
		return false
	}
	return p.re.Match(b)
}
