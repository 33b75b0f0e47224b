package faults

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// The rule index: a snapshot sorts its enabled rules into one bucket per
// combination of the header facts (method or ChannelData, class, direction,
// transport, signed or not), so Decide meets only the rules whose header
// conditions hold and checks the other conditions inside that bucket. A
// bucket lists rule positions in evaluation order (priority, then insertion),
// so the first rule that fires is the one a walk of every rule would find.
//
// There are indexSlots buckets. Identical buckets share their storage, so an
// index holds at most indexSlots x (number of rules) positions and usually
// far fewer (most rules accept many header combinations alike).
const (
	slotMethods    = 9 // binding … channelbind, channeldata, other (the bit order of match.go)
	slotClasses    = 5 // request, indication, success, error, none (ChannelData)
	slotDirs       = 2
	slotTransports = 2
	slotBases      = slotMethods * slotClasses * slotDirs * slotTransports
	indexSlots     = slotBases * 2 // × signed, unsigned
)

// ruleIndex is the rule index of one snapshot.
type ruleIndex struct {
	buckets [indexSlots][]int32 // positions in snapshot.rules, in evaluation order
	// split[b] is set when the signed and unsigned buckets of base b
	// differ: only then does Decide walk the attributes for integrity.
	split [slotBases]bool
}

// baseKey returns the header bits (see the key bit groups in match.go) of
// base slot b, signed group empty.
func baseKey(b int) uint32 {
	t := b % slotTransports
	b /= slotTransports
	d := b % slotDirs
	b /= slotDirs
	c := b % slotClasses
	m := b / slotClasses
	return bitBinding<<m | bitRequest<<c | bitIn<<d | bitUDP<<t
}

// newRuleIndex buckets the enabled rules of rules (in evaluation order) by
// their header masks.
func newRuleIndex(rules []compiledRule) *ruleIndex {
	x := new(ruleIndex)
	shared := make(map[string][]int32)
	var list []int32
	var name []byte
	for b := range slotBases {
		key := baseKey(b)
		for s, signed := range [2]uint32{bitSigned, bitUnsigned} {
			list = list[:0]
			k := key | signed
			for i := range rules {
				if r := &rules[i]; r.enabled && k&r.m.mask == k {
					list = append(list, int32(i))
				}
			}
			if len(list) == 0 {
				continue
			}
			name = name[:0]
			for _, i := range list {
				name = binary.LittleEndian.AppendUint32(name, uint32(i))
			}
			bucket, ok := shared[string(name)]
			if !ok {
				bucket = slices.Clone(list)
				shared[string(name)] = bucket
			}
			x.buckets[b*2+s] = bucket
		}
		x.split[b] = !slices.Equal(x.buckets[b*2], x.buckets[b*2+1])
	}
	return x
}

// bucket returns the rules that could match p, in evaluation order.
func (x *ruleIndex) bucket(p *Packet) []int32 {
	b := packetBase(p)
	if b < 0 {
		return nil
	}
	if x.split[b] && !p.HasIntegrity() {
		return x.buckets[b*2+1]
	}
	return x.buckets[b*2]
}

// packetBase returns p's base slot (header facts but signed), or -1 when p
// is neither STUN nor ChannelData (such a message matches no rule).
func packetBase(p *Packet) int {
	p.parse()
	var m, c int
	switch p.kind {
	case kindSTUN:
		m = bits.TrailingZeros32(methodBit(p.Method()))
		c = int(p.Class())
	case kindChannelData:
		m = bits.TrailingZeros32(bitChannelData)
		c = slotClasses - 1
	default:
		return -1
	}
	b := (m*slotClasses+c)*slotDirs + int(p.Dir&1)
	return b*slotTransports + int(p.Transport&1)
}

// methodBit returns a STUN method's key bit.
func methodBit(m Method) uint32 {
	switch m {
	case MethodBinding:
		return bitBinding
	case MethodAllocate:
		return bitAllocate
	case MethodRefresh:
		return bitRefresh
	case MethodSend:
		return bitSend
	case MethodData:
		return bitData
	case MethodCreatePermission:
		return bitCreatePermission
	case MethodChannelBind:
		return bitChannelBind
	}
	return bitOtherMethod
}
