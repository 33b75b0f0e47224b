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

// matcher is a compiled [Match] minus its header conditions (those are the
// rule's key mask). Every field is optional; the zero matcher holds.
type matcher struct {
	minSize, maxSize int
	transmission     int
	sources          *sourceSet
	username         *pattern
	attrs            []attrMatcher
	webhook          *webhookMatcher // nil: no webhook condition
}

// attrMatcher is a compiled [AttributeMatch].
type attrMatcher struct {
	typ            uint16
	absent         bool // present = false
	contains       []byte
	regex          *pattern
	minLen, maxLen int
}

// Bits of compiledRule.need: which non-header conditions a rule has.
const (
	needSize uint8 = 1 << iota
	needTx
	needSources
	needUsername
	needAttrs
	needWebhook
)

// needs returns the need* bits of m's conditions.
func (m *matcher) needs() uint8 {
	var n uint8
	if m.minSize > 0 || m.maxSize > 0 {
		n |= needSize
	}
	if m.transmission > 0 {
		n |= needTx
	}
	if m.sources != nil {
		n |= needSources
	}
	if m.username != nil {
		n |= needUsername
	}
	if len(m.attrs) > 0 {
		n |= needAttrs
	}
	if m.webhook != nil {
		n |= needWebhook
	}
	return n
}

// attrsMatch reports whether every attribute condition holds.
func (m *matcher) attrsMatch(p *Packet) bool {
	for i := range m.attrs {
		if !m.attrs[i].match(p) {
			return false
		}
	}
	return true
}

// sourceSet is a compiled Match.Sources: IPv4 networks as numbers (the
// common case, checked with a mask), others as prefixes.
type sourceSet struct {
	v4    []ipv4Net
	other []netip.Prefix
}

type ipv4Net struct{ addr, mask uint32 }

func newSourceSet(ps []netip.Prefix) *sourceSet {
	s := new(sourceSet)
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

// one4 returns the set's only network when it is a single IPv4 prefix (the
// common case), for Decide's inline check.
func (s *sourceSet) one4() (ipv4Net, bool) {
	if len(s.v4) == 1 && len(s.other) == 0 {
		return s.v4[0], true
	}
	return ipv4Net{}, false
}

// contains reports whether p's client lies in the set. IPv4-mapped IPv6
// clients count as IPv4.
func (s *sourceSet) contains(p *Packet) bool {
	a := p.clientAddr()
	if a.Is4() {
		for _, n := range s.v4 {
			if p.addr4&n.mask == n.addr {
				return true
			}
		}
		return false
	}
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

func (p *pattern) match(b []byte) bool {
	if p.anchored {
		if !bytes.HasPrefix(b, p.lit) {
			return false
		}
		return p.complete || p.re.Match(b)
	}
	if p.complete {
		return bytes.Contains(b, p.lit)
	}
	if len(p.lit) > 0 && !bytes.Contains(b, p.lit) {
		return false
	}
	return p.re.Match(b)
}
