package faults

import (
	"encoding/binary"
	"net/netip"

	"github.com/stunfault/stunfault/internal/stunwire"
)

// Direction is which way a message travels through stunfault.
type Direction uint8

// Directions.
const (
	// In is client to server: what stunfault reads before pion sees it.
	In Direction = iota
	// Out is server to client: what pion writes.
	Out
)

// String returns "in" or "out".
func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Transport is the transport a message came or goes over.
type Transport uint8

// Transports.
const (
	// UDP is a datagram listener.
	UDP Transport = iota
	// TCP is a stream listener; messages arrive framed.
	TCP
)

// String returns "udp" or "tcp".
func (t Transport) String() string {
	if t == TCP {
		return "tcp"
	}
	return "udp"
}

// Method is a STUN method number (RFC 8489 §5, RFC 8656 §17).
type Method uint16

// STUN and TURN methods stunfault knows by name.
const (
	MethodBinding          Method = 0x001
	MethodAllocate         Method = 0x003
	MethodRefresh          Method = 0x004
	MethodSend             Method = 0x006
	MethodData             Method = 0x007
	MethodCreatePermission Method = 0x008
	MethodChannelBind      Method = 0x009
)

// String returns the method's name as rules spell it ("binding",
// "createpermission"), or "unknown" for a method stunfault has no name for.
func (m Method) String() string {
	switch m {
	case MethodBinding:
		return "binding"
	case MethodAllocate:
		return "allocate"
	case MethodRefresh:
		return "refresh"
	case MethodSend:
		return "send"
	case MethodData:
		return "data"
	case MethodCreatePermission:
		return "createpermission"
	case MethodChannelBind:
		return "channelbind"
	}
	return "unknown"
}

// Class is a STUN message class (RFC 8489 §5).
type Class uint8

// STUN message classes, numbered as on the wire (C1 C0).
const (
	ClassRequest    Class = 0
	ClassIndication Class = 1
	ClassSuccess    Class = 2
	ClassError      Class = 3
)

// String returns "request", "indication", "success" or "error".
func (c Class) String() string {
	switch c {
	case ClassRequest:
		return "request"
	case ClassIndication:
		return "indication"
	case ClassSuccess:
		return "success"
	}
	return "error"
}

// STUN wire constants (RFC 8489 §5, §14).
const (
	stunHeaderSize = stunwire.HeaderSize
	attrUsername   = 0x0006
	attrIntegrity  = 0x0008
	attrIntegrity2 = 0x001C // MESSAGE-INTEGRITY-SHA256
)

// packetKind is what the header says a message is.
type packetKind uint8

const (
	kindUnparsed packetKind = iota
	kindOther               // neither STUN nor ChannelData: matches no rule
	kindSTUN
	kindChannelData
)

// Packet is the engine's view of one message: the bytes as they are on the
// wire plus where they go. The header is parsed on first use and attributes
// are read only when asked for; nothing is copied and no accessor allocates.
//
// Use one Packet per message: its accessors cache what they parse, so after
// changing Data, reset the whole Packet (*p = Packet{Data: ...}). A Packet is
// not safe for concurrent use; the engine does not retain it or its Data
// after Decide returns.
type Packet struct {
	// Data is the whole message: a STUN message or a ChannelData message.
	Data []byte
	// Dir is the direction the message travels.
	Dir Direction
	// Transport is the transport it came or goes over.
	Transport Transport
	// Client is the client's address: the source of an In message, the
	// destination of an Out message. On the peer leg it is the peer's.
	Client netip.AddrPort
	// Leg is ClientLeg, or PeerLeg for a datagram between a relayed address
	// (Relay) and a peer (Client): Data is then the payload, whatever it
	// looks like.
	Leg   Leg
	Relay netip.AddrPort

	kind   packetKind
	typ    uint16 // STUN message type, or the channel number
	length uint16 // the header's length field
	method Method // from typ, for STUN
	class  Class  // from typ, for STUN

	// USERNAME and MESSAGE-INTEGRITY, found in one walk of the attributes
	// the first time either is asked for (several rules may ask).
	scanned   bool
	hasUser   bool
	integrity bool
	user      []byte
	types     uint64 // bit t%64 set for each attribute type t present

	addr    netip.Addr // Client's address, IPv4-mapped IPv6 unmapped
	addr4   uint32     // addr as a number, when it is IPv4
	is4     bool       // addr is IPv4 (IPv4-mapped IPv6 included)
	addrSet bool
}

// parse reads the header once. It is small enough to inline, so that the
// header accessors below are too: the engine and the interception ask them
// several times per message.
func (p *Packet) parse() {
	if p.kind == kindUnparsed {
		p.parseHeader()
	}
}

func (p *Packet) parseHeader() {
	p.kind = kindOther
	d := p.Data
	kind, size := stunwire.Classify(d)
	if size > len(d) {
		return // the length does not fit in Data
	}
	switch kind {
	case stunwire.STUN:
		t := binary.BigEndian.Uint16(d[0:2])
		p.kind, p.typ = kindSTUN, t
		// RFC 8489 §5: M11..M7 C1 M6..M4 C0 M3..M0.
		p.method = Method(t&0x000F | (t&0x00E0)>>1 | (t&0x3E00)>>2)
		p.class = Class((t&0x0010)>>4 | (t&0x0100)>>7)
	case stunwire.ChannelData:
		p.kind, p.typ = kindChannelData, binary.BigEndian.Uint16(d[0:2])
	default:
		return
	}
	p.length = binary.BigEndian.Uint16(d[2:4])
}

// IsSTUN reports whether Data is a well-formed STUN header: leading bits
// zero, the magic cookie, and a length that is a multiple of 4 and fits in
// Data.
func (p *Packet) IsSTUN() bool { p.parse(); return p.kind == kindSTUN }

// IsChannelData reports whether Data is a TURN ChannelData message (RFC 8656
// §12.4) whose length fits in Data.
func (p *Packet) IsChannelData() bool { p.parse(); return p.kind == kindChannelData }

// Method returns the STUN method (0 when Data is not STUN).
func (p *Packet) Method() Method { p.parse(); return p.method }

// Class returns the STUN class (ClassRequest when Data is not STUN; check
// IsSTUN first).
func (p *Packet) Class() Class { p.parse(); return p.class }

// TransactionID returns the STUN transaction ID (zero when Data is not STUN).
func (p *Packet) TransactionID() [12]byte {
	var id [12]byte
	if p.IsSTUN() {
		copy(id[:], p.Data[8:stunHeaderSize])
	}
	return id
}

// Attr returns the value of the first attribute of type typ, without its
// padding. It reports false when the message is not STUN, lacks the
// attribute, or its attributes are malformed before reaching it.
func (p *Packet) Attr(typ uint16) ([]byte, bool) {
	b := p.attrBytes()
	for {
		t, v, rest, ok := nextAttr(b)
		if !ok {
			return nil, false
		}
		if t == typ {
			return v, true
		}
		b = rest
	}
}

// attrBytes returns the attribute section of a STUN message (nil otherwise).
func (p *Packet) attrBytes() []byte {
	if !p.IsSTUN() {
		return nil
	}
	return p.Data[stunHeaderSize : stunHeaderSize+int(p.length)]
}

// nextAttr splits the first attribute off b (RFC 8489 §14: type, length,
// value, padding to a multiple of 4). ok is false when b is empty or the
// attribute does not fit; a missing final padding is tolerated.
func nextAttr(b []byte) (typ uint16, val, rest []byte, ok bool) {
	if len(b) < 4 {
		return 0, nil, nil, false
	}
	typ = binary.BigEndian.Uint16(b[0:2])
	n := int(binary.BigEndian.Uint16(b[2:4]))
	b = b[4:]
	if n > len(b) {
		return 0, nil, nil, false
	}
	val = b[:n:n]
	if padded := (n + 3) &^ 3; padded <= len(b) {
		rest = b[padded:]
	}
	return typ, val, rest, true
}

// Username returns the raw USERNAME attribute.
func (p *Packet) Username() ([]byte, bool) {
	p.scan()
	return p.user, p.hasUser
}

// HasIntegrity reports whether the message carries MESSAGE-INTEGRITY or
// MESSAGE-INTEGRITY-SHA256, that is, whether the client signed it.
func (p *Packet) HasIntegrity() bool {
	p.scan()
	return p.integrity
}

// mayHave reports whether an attribute of type typ may be present: false
// means it certainly is not.
func (p *Packet) mayHave(typ uint16) bool {
	p.scan()
	return p.types&(1<<(typ%64)) != 0
}

// scan walks the attributes once for Username, HasIntegrity and mayHave.
func (p *Packet) scan() {
	if p.scanned {
		return
	}
	p.scanned = true
	b := p.attrBytes()
	for {
		t, v, rest, ok := nextAttr(b)
		if !ok {
			return
		}
		p.types |= 1 << (t % 64)
		switch t {
		case attrUsername:
			if !p.hasUser {
				p.user, p.hasUser = v, true
			}
		case attrIntegrity, attrIntegrity2:
			p.integrity = true
		}
		b = rest
	}
}

// clientAddr returns the client's address with an IPv4-mapped IPv6 address
// unmapped, computed once.
func (p *Packet) clientAddr() netip.Addr {
	if !p.addrSet {
		p.addr, p.addrSet = p.Client.Addr().Unmap(), true
		if p.addr.Is4() {
			p.is4 = true
			p.addr4 = binary.BigEndian.Uint32(p.addr.AsSlice())
		}
	}
	return p.addr
}

// methodName is the name of the message's method as rules and the journal
// spell it: a STUN method, "channeldata", or "" for anything else.
func (p *Packet) methodName() string {
	switch {
	case p.IsSTUN():
		return p.Method().String()
	case p.IsChannelData():
		return "channeldata"
	}
	return ""
}

// className is the class name of a STUN message, "" otherwise.
func (p *Packet) className() string {
	if !p.IsSTUN() {
		return ""
	}
	return p.Class().String()
}
