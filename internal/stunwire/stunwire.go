// Package stunwire tells a STUN message from a TURN ChannelData message by
// its first bytes. It is the one classifier stunfault has: the engine's
// packet view (faults.Packet) and the TCP framer (server/internal/stunframe)
// both use it, so a message is the same thing to both.
package stunwire

import "encoding/binary"

// Header sizes and the STUN magic cookie.
const (
	// HeaderSize is the size of a STUN header (RFC 8489 §5).
	HeaderSize = 20
	// ChannelDataHeaderSize is the size of a ChannelData header (RFC 8656
	// §12.4): channel number and length.
	ChannelDataHeaderSize = 4
	// MagicCookie is the fixed value of a STUN header's bytes 4-8.
	MagicCookie = 0x2112A442
)

// Kind is what the first bytes of a message say it is.
type Kind uint8

// Kinds of message.
const (
	// Incomplete means too few bytes to tell.
	Incomplete Kind = iota
	// Invalid means neither STUN nor ChannelData.
	Invalid
	// STUN is a STUN message: the two top bits 0, a length that is a
	// multiple of 4, and the magic cookie (RFC 8489 §5).
	STUN
	// ChannelData is a TURN ChannelData message: a channel number from
	// 0x4000 to 0x7FFF, the range pion/turn accepts in ChannelBind (RFC
	// 5766 §11; RFC 8656 §12 narrowed it to 0x4FFF, but RFC 5766 clients
	// such as coturn's turnutils_uclient still bind numbers above it).
	ChannelData
)

// Classify returns what b starts with and the size its header gives: the
// header plus the header's length field (for ChannelData over TCP, padding
// to a multiple of 4 follows, RFC 8656 §12.5). The size may exceed len(b).
func Classify(b []byte) (Kind, int) {
	if len(b) < ChannelDataHeaderSize {
		return Incomplete, 0
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	switch b[0] >> 6 {
	case 0:
		if length%4 != 0 {
			return Invalid, 0
		}
		if len(b) < 8 {
			return Incomplete, 0
		}
		if binary.BigEndian.Uint32(b[4:8]) != MagicCookie {
			return Invalid, 0
		}
		return STUN, HeaderSize + length
	case 1:
		return ChannelData, ChannelDataHeaderSize + length
	}
	return Invalid, 0
}
