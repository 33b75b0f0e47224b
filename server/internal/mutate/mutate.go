// Package mutate makes the byte-level changes of stunfault's truncate,
// corrupt and mapped_address actions. No function modifies its input: pion
// reuses its buffers, so the original must stay intact. Corrupt and
// MappedAddress return a new slice; Truncate returns a prefix of its input.
package mutate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/internal/stunwire"
)

const (
	headerSize     = 20
	cookieOffset   = 4
	attrHeaderSize = 4
	attrFingerprnt = 0x8028
)

// Corrupt targets.
const (
	// TargetHeader flips bytes from the magic cookie on (RFC 8489 §5), so a
	// receiver no longer recognises the message as STUN.
	TargetHeader = "header"
	// TargetAttribute flips bytes at the start of the first attribute's
	// value: the message still parses, with a wrong value. In an address
	// attribute (XOR-MAPPED-ADDRESS and the like) the flipping starts at the
	// port, past the reserved byte and the family: a receiver ignores the
	// first (RFC 8489 §14.1), and a bad family makes the attribute
	// undecodable rather than wrong.
	TargetAttribute = "attribute"
	// TargetFingerprint flips bytes of the FINGERPRINT value, so
	// Fingerprint.Check fails while everything else parses.
	TargetFingerprint = "fingerprint"
)

// Truncate returns the first n bytes of b (all of b when n >= len(b)), as a
// prefix of b: nothing is copied.
func Truncate(b []byte, n int) []byte {
	return b[:max(0, min(n, len(b)))]
}

// Corrupt returns a copy of b with count bytes (at least 1) inverted in
// target. A message too short for the target, or without the attribute it
// names, is corrupted in the header instead; ChannelData (not STUN) always in
// its first bytes.
func Corrupt(b []byte, target string, count int) []byte {
	out := append([]byte(nil), b...)
	count = max(1, count)
	start := corruptStart(out, target)
	for i := start; i < len(out) && i < start+count; i++ {
		out[i] = ^out[i]
	}
	return out
}

func corruptStart(b []byte, target string) int {
	if k, _ := stunwire.Classify(b); k != stunwire.STUN || len(b) < headerSize {
		return 0
	}
	switch target {
	case TargetAttribute:
		if len(b) >= headerSize+attrHeaderSize+1 {
			start := headerSize + attrHeaderSize
			if addressAttrs[binary.BigEndian.Uint16(b[headerSize:])] && len(b) > start+addrPortOffset {
				start += addrPortOffset
			}
			return start
		}
	case TargetFingerprint:
		// FINGERPRINT is the last attribute when present (RFC 8489 §14.7).
		if len(b) >= headerSize+8 && binary.BigEndian.Uint16(b[len(b)-8:]) == attrFingerprnt {
			return len(b) - 4
		}
	}
	return cookieOffset
}

// addrPortOffset is where the port starts in the value of an address
// attribute, after a reserved byte and the family (RFC 8489 §14.1, §14.2).
const addrPortOffset = 2

// addressAttrs are the attributes whose value is an address in the format
// of RFC 8489 §14.1: MAPPED-ADDRESS, XOR-MAPPED-ADDRESS, ALTERNATE-SERVER,
// RESPONSE-ORIGIN, OTHER-ADDRESS (RFC 5780) and TURN's XOR-PEER-ADDRESS and
// XOR-RELAYED-ADDRESS (RFC 8656).
var addressAttrs = map[uint16]bool{
	0x0001: true, 0x0012: true, 0x0016: true, 0x0020: true,
	0x8023: true, 0x802B: true, 0x802C: true,
}

// ErrNotBindingSuccess is returned by MappedAddress for other messages.
var ErrNotBindingSuccess = errors.New("mutate: not a Binding success response")

// MappedAddress returns a copy of the Binding success response b with its
// XOR-MAPPED-ADDRESS (and MAPPED-ADDRESS, when present) set to addr, and a
// fresh FINGERPRINT when b had one. Other attributes are kept in order.
func MappedAddress(b []byte, addr netip.AddrPort) ([]byte, error) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotBindingSuccess, err)
	}
	if m.Type != stun.BindingSuccess {
		return nil, fmt.Errorf("%w: %s", ErrNotBindingSuccess, m.Type)
	}
	ip := net.IP(addr.Addr().Unmap().AsSlice())
	out := stun.New()
	out.TransactionID = m.TransactionID
	out.SetType(m.Type)
	out.WriteHeader()
	fingerprint := false
	for _, a := range m.Attributes {
		var err error
		switch a.Type {
		case stun.AttrXORMappedAddress:
			err = (&stun.XORMappedAddress{IP: ip, Port: int(addr.Port())}).AddTo(out)
		case stun.AttrMappedAddress:
			err = (&stun.MappedAddress{IP: ip, Port: int(addr.Port())}).AddTo(out)
		case stun.AttrFingerprint:
			fingerprint = true
		default:
			out.Add(a.Type, a.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("mutate: writing %s: %w", a.Type, err)
		}
	}
	if fingerprint {
		if err := stun.Fingerprint.AddTo(out); err != nil {
			return nil, fmt.Errorf("mutate: fingerprint: %w", err)
		}
	}
	return out.Raw, nil
}
