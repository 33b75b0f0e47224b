package faults

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/internal/rfc5769"
)

// The RFC 5769 sample messages (§2.1-§2.4), shared with the other parsers'
// tests.
var (
	rfc5769Request         = rfc5769.Request
	rfc5769IPv4Response    = rfc5769.ResponseIPv4
	rfc5769IPv6Response    = rfc5769.ResponseIPv6
	rfc5769LongTermRequest = rfc5769.RequestLongTerm
)

// channelData returns a ChannelData message on channel 0x4001 carrying data.
func channelData(data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.BigEndian.PutUint16(b[0:2], 0x4001)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// buildSTUN builds a STUN message with a random transaction ID.
func buildSTUN(tb testing.TB, typ stun.MessageType, setters ...stun.Setter) []byte {
	tb.Helper()
	m, err := stun.Build(append([]stun.Setter{stun.TransactionID, typ}, setters...)...)
	if err != nil {
		tb.Fatalf("stun.Build: %v", err)
	}
	return m.Raw
}

func TestPacketRFC5769(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		method    Method
		class     Class
		txid      string
		username  string
		integrity bool
		software  string
	}{
		{"request", rfc5769Request, MethodBinding, ClassRequest, "\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae", "evtj:h6vY", true, "STUN test client"},
		{"ipv4 response", rfc5769IPv4Response, MethodBinding, ClassSuccess, "\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae", "", true, "test vector"},
		{"ipv6 response", rfc5769IPv6Response, MethodBinding, ClassSuccess, "\xb7\xe7\xa7\x01\xbc\x34\xd6\x86\xfa\x87\xdf\xae", "", true, "test vector"},
		{"long-term request", rfc5769LongTermRequest, MethodBinding, ClassRequest, "\x78\xad\x34\x33\xc6\xad\x72\xc0\x29\xda\x41\x2e", "\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Packet{Data: tt.data}
			if !p.IsSTUN() || p.IsChannelData() {
				t.Fatalf("IsSTUN, IsChannelData = %v, %v; want true, false", p.IsSTUN(), p.IsChannelData())
			}
			if got := p.Method(); got != tt.method {
				t.Errorf("Method() = %v, want %v", got, tt.method)
			}
			if got := p.Class(); got != tt.class {
				t.Errorf("Class() = %v, want %v", got, tt.class)
			}
			if got := p.TransactionID(); string(got[:]) != tt.txid {
				t.Errorf("TransactionID() = %x, want %x", got, tt.txid)
			}
			if got, want := int(p.length), len(tt.data)-20; got != want {
				t.Errorf("length = %d, want %d", got, want)
			}
			u, ok := p.Username()
			if got := string(u); ok != (tt.username != "") || got != tt.username {
				t.Errorf("Username() = %q, %v; want %q", got, ok, tt.username)
			}
			if got := p.HasIntegrity(); got != tt.integrity {
				t.Errorf("HasIntegrity() = %v, want %v", got, tt.integrity)
			}
			sw, _ := p.Attr(0x8022)
			if string(sw) != tt.software {
				t.Errorf("Attr(SOFTWARE) = %q, want %q", sw, tt.software)
			}
			if _, ok := p.Attr(0x8028); !ok {
				if tt.name != "long-term request" {
					t.Errorf("Attr(FINGERPRINT) not found")
				}
			}
		})
	}
}

func TestPacketKinds(t *testing.T) {
	alloc := buildSTUN(t, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse))
	send := buildSTUN(t, stun.NewType(stun.MethodSend, stun.ClassIndication))
	tests := []struct {
		name        string
		data        []byte
		stun, cdata bool
		method      Method
		class       Class
		methodName  string
	}{
		{"allocate error", alloc, true, false, MethodAllocate, ClassError, "allocate"},
		{"send indication", send, true, false, MethodSend, ClassIndication, "send"},
		{"channeldata", channelData([]byte("hello")), false, true, 0, 0, "channeldata"},
		{"empty", nil, false, false, 0, 0, ""},
		{"short", []byte{0, 1, 0}, false, false, 0, 0, ""},
		{"rtp", []byte{0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, false, false, 0, 0, ""},
		{"bad cookie", append([]byte{0, 1, 0, 0, 1, 2, 3, 4}, make([]byte, 12)...), false, false, 0, 0, ""},
		{"length beyond data", append([]byte{0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...), false, false, 0, 0, ""},
		{"length not multiple of 4", append([]byte{0, 1, 0, 2, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 14)...), false, false, 0, 0, ""},
		{"channeldata too short", []byte{0x40, 0x01, 0, 9, 1, 2}, false, false, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Packet{Data: tt.data}
			if p.IsSTUN() != tt.stun || p.IsChannelData() != tt.cdata {
				t.Fatalf("IsSTUN, IsChannelData = %v, %v; want %v, %v", p.IsSTUN(), p.IsChannelData(), tt.stun, tt.cdata)
			}
			if p.Method() != tt.method || p.Class() != tt.class || p.methodName() != tt.methodName {
				t.Errorf("Method, Class, name = %v, %v, %q; want %v, %v, %q", p.Method(), p.Class(), p.methodName(), tt.method, tt.class, tt.methodName)
			}
			if !tt.stun {
				if _, ok := p.Attr(attrUsername); ok {
					t.Errorf("Attr found an attribute in a non-STUN message")
				}
			}
		})
	}
	if p := (&Packet{Data: channelData([]byte("hello"))}); !p.IsChannelData() || p.typ != 0x4001 || p.length != 5 {
		t.Errorf("channel, length = %#x, %d; want 0x4001, 5", p.typ, p.length)
	}
}

func TestPacketMalformedAttributes(t *testing.T) {
	// A USERNAME whose length runs past the message: not found.
	m := append([]byte{0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 12)...)
	m = append(m, 0x00, 0x06, 0x00, 0x10, 'a', 'b', 'c', 'd')
	p := &Packet{Data: m}
	if !p.IsSTUN() {
		t.Fatal("IsSTUN() = false, want true")
	}
	if v, ok := p.Username(); ok {
		t.Errorf("Username() = %q, true; want not found", v)
	}
	// Trailing bytes beyond the header's length are not attributes.
	full := buildSTUN(t, stun.BindingRequest)
	full = append(full, 0x00, 0x06, 0x00, 0x01, 'x', 0, 0, 0)
	if _, ok := (&Packet{Data: full}).Username(); ok {
		t.Errorf("Username() found an attribute beyond the header's length")
	}
}

func TestPacketAccessorsDoNotAllocate(t *testing.T) {
	p := &Packet{Data: rfc5769Request}
	n := testing.AllocsPerRun(100, func() {
		*p = Packet{Data: rfc5769Request}
		_ = p.IsSTUN()
		_ = p.Method()
		_ = p.TransactionID()
		_, _ = p.Username()
		_ = p.HasIntegrity()
		eachAttr(p, func(uint16, []byte) {})
	})
	if n != 0 {
		t.Errorf("allocs per run = %v, want 0", n)
	}
}

func FuzzPacket(f *testing.F) {
	for _, b := range [][]byte{rfc5769Request, rfc5769IPv4Response, rfc5769IPv6Response, rfc5769LongTermRequest, channelData([]byte("x"))} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &Packet{Data: data, Client: netip.MustParseAddrPort("127.0.0.1:1")}
		isSTUN, isCD := p.IsSTUN(), p.IsChannelData()
		if isSTUN && isCD {
			t.Fatal("both STUN and ChannelData")
		}
		_, _, _ = p.Method(), p.Class(), p.TransactionID()
		if (isSTUN && stunHeaderSize+int(p.length) > len(data)) || (isCD && 4+int(p.length) > len(data)) {
			t.Fatalf("length %d beyond %d bytes", p.length, len(data))
		}
		n := 0
		eachAttr(p, func(typ uint16, v []byte) {
			n++
			if len(v) > 0 && !within(data, v) {
				t.Fatalf("attribute %#x value lies outside Data", typ)
			}
			if w, ok := p.Attr(typ); !ok || (len(w) > 0 && !within(data, w)) {
				t.Fatalf("Attr(%#x) = %v, want a value within Data", typ, ok)
			}
		})
		if !isSTUN && n > 0 {
			t.Fatal("attributes in a non-STUN message")
		}
		_, _ = p.Username()
		_ = p.HasIntegrity()
		_ = packetBase(p)
		if isSTUN {
			// pion must agree that a header we accept is STUN.
			if !stun.IsMessage(data) {
				t.Fatalf("IsSTUN() = true but stun.IsMessage = false")
			}
		}
	})
}

// within reports whether v is a subslice of data.
func within(data, v []byte) bool {
	if len(data) == 0 {
		return false
	}
	for i := range data {
		if &data[i] == &v[0] {
			return i+len(v) <= len(data) && bytes.Equal(data[i:i+len(v)], v)
		}
	}
	return false
}

// eachAttr calls fn with the type and value of each attribute of a STUN
// message in order, as Attr walks them, stopping at the first malformed one.
func eachAttr(p *Packet, fn func(typ uint16, v []byte)) {
	b := p.attrBytes()
	for {
		t, v, rest, ok := nextAttr(b)
		if !ok {
			return
		}
		fn(t, v)
		b = rest
	}
}
