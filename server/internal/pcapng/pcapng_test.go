package pcapng

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// The blocks are laid out as the format says: each starts with its type
// and total length and ends with the length again, and an Enhanced Packet
// carries its comment.
func TestWriterBlocks(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	pkt := AppendUDP(nil, netip.MustParseAddrPort("127.0.0.1:5000"), netip.MustParseAddrPort("127.0.0.1:3478"), []byte("hello"))
	if err := w.WritePacket(time.Unix(1, 2), pkt, "a comment"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var types []uint32
	for len(b) > 0 {
		typ, n := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if n%4 != 0 || int(n) > len(b) || binary.LittleEndian.Uint32(b[n-4:]) != n {
			t.Fatalf("block %#x: bad length %d", typ, n)
		}
		if typ == blockEPB && !bytes.Contains(b[:n], []byte("a comment")) {
			t.Error("the packet block lacks its comment")
		}
		types = append(types, typ)
		b = b[n:]
	}
	if len(types) != 3 || types[0] != blockSHB || types[1] != blockIDB || types[2] != blockEPB {
		t.Fatalf("blocks: got %#x, want SHB, IDB, EPB", types)
	}
}

// The IPv4 header checksum verifies, and a UDP checksum over the pseudo
// header sums to zero.
func TestFrameChecksums(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:3478")
	p := AppendUDP(nil, src, dst, []byte("odd"))
	if checksum(0, p[:20]) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}
	pseudo := append(append([]byte{}, p[12:20]...), 0, protoUDP, 0, byte(len(p)-20))
	if c := checksum(checksumAdd(0, pseudo), p[20:]); c != 0 {
		t.Errorf("UDP checksum does not verify: %#x", c)
	}
	p6 := AppendTCP(nil, netip.MustParseAddrPort("[::1]:5000"), netip.MustParseAddrPort("[::1]:3478"), 1, 1, []byte("x"))
	if p6[0]>>4 != 6 || p6[6] != protoTCP || len(p6) != 40+20+1 {
		t.Errorf("IPv6/TCP frame: version %d, next header %d, %d bytes", p6[0]>>4, p6[6], len(p6))
	}
}
