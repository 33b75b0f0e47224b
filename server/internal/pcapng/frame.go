package pcapng

import (
	"encoding/binary"
	"net/netip"
)

var be = binary.BigEndian

// IP protocol numbers.
const (
	protoTCP = 6
	protoUDP = 17
)

// MaxTCPSegment is the most payload AppendTCP puts in one segment, so
// that any segment fits an IPv4 packet; callers split larger payloads.
const MaxTCPSegment = 32768

// AppendUDP appends to b a raw IP packet (IPv4 when both addresses are
// IPv4, IPv6 otherwise) carrying payload in a UDP datagram from src to dst,
// checksums filled in. A payload too large for one datagram is cut to fit.
func AppendUDP(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	payload = payload[:min(len(payload), 65507)]
	l4 := be.AppendUint16(nil, src.Port())
	l4 = be.AppendUint16(l4, dst.Port())
	l4 = be.AppendUint16(l4, uint16(8+len(payload)))
	l4 = be.AppendUint16(l4, 0) // checksum, below
	l4 = append(l4, payload...)
	return appendIP(b, src.Addr(), dst.Addr(), protoUDP, l4, 6)
}

// AppendTCP appends to b a raw IP packet carrying payload (at most
// MaxTCPSegment bytes) in a TCP segment from src to dst with sequence
// number seq, acknowledging ack, flags PSH and ACK.
func AppendTCP(b []byte, src, dst netip.AddrPort, seq, ack uint32, payload []byte) []byte {
	payload = payload[:min(len(payload), MaxTCPSegment)]
	l4 := be.AppendUint16(nil, src.Port())
	l4 = be.AppendUint16(l4, dst.Port())
	l4 = be.AppendUint32(l4, seq)
	l4 = be.AppendUint32(l4, ack)
	l4 = append(l4, 5<<4, 0x18) // data offset 5 words; PSH, ACK
	l4 = be.AppendUint16(l4, 65535)
	l4 = be.AppendUint16(l4, 0) // checksum, below
	l4 = be.AppendUint16(l4, 0) // urgent pointer
	l4 = append(l4, payload...)
	return appendIP(b, src.Addr(), dst.Addr(), protoTCP, l4, 16)
}

// appendIP appends the IP header for l4 and l4 itself, after filling in the
// transport checksum at l4[csum:].
func appendIP(b []byte, src, dst netip.Addr, proto uint8, l4 []byte, csum int) []byte {
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is4() != dst.Is4() { // one of each: write both as IPv6
		src, dst = netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}
	var pseudo []byte
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		pseudo = append(append(append(pseudo, s[:]...), d[:]...), 0, proto)
		pseudo = be.AppendUint16(pseudo, uint16(len(l4)))
	} else {
		s, d := src.As16(), dst.As16()
		pseudo = append(append(pseudo, s[:]...), d[:]...)
		pseudo = be.AppendUint32(pseudo, uint32(len(l4)))
		pseudo = append(pseudo, 0, 0, 0, proto)
	}
	c := checksum(checksumAdd(0, pseudo), l4)
	if c == 0 && proto == protoUDP {
		c = 0xFFFF // RFC 768: zero means no checksum
	}
	be.PutUint16(l4[csum:], c)

	if src.Is4() {
		h := []byte{0x45, 0}
		h = be.AppendUint16(h, uint16(20+len(l4)))
		h = append(h, 0, 0, 0x40, 0, 64, proto, 0, 0) // id 0, DF, TTL 64
		s, d := src.As4(), dst.As4()
		h = append(append(h, s[:]...), d[:]...)
		be.PutUint16(h[10:], checksum(0, h))
		return append(append(b, h...), l4...)
	}
	h := []byte{0x60, 0, 0, 0}
	h = be.AppendUint16(h, uint16(len(l4)))
	h = append(h, proto, 64)
	s, d := src.As16(), dst.As16()
	h = append(append(h, s[:]...), d[:]...)
	return append(append(b, h...), l4...)
}

// checksumAdd adds b to the one's complement sum s (RFC 1071).
func checksumAdd(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(be.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// checksum returns the Internet checksum of b added to the partial sum s.
func checksum(s uint32, b []byte) uint16 {
	s = checksumAdd(s, b)
	for s > 0xFFFF {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}
