package server

import (
	"net"
	"net/netip"
)

// relayBatchSize is how many datagrams from peers one recvmmsg reads from a
// relay socket at most. The slots after the first are the size of pion's
// relay buffer (1600 bytes in pion/turn v5), so a relay holds 7 of them
// (about 11 KiB), made at its first read.
const relayBatchSize = 8

// relayBatch is the batched reading of a relay socket beneath a peerConn
// (Linux, a *net.UDPConn), as udpBatch reads a listener's: pion's buffer
// takes the first datagram, the batch's own slots the others, and senders
// come from a small addrCache, so a datagram costs no allocation and the
// allocation's read loop (pion's, the only reader) makes one system call
// for every datagram queued on the socket, not one each. Writes to peers
// are not batched: pion writes them from its listeners' read loops, one
// per datagram a client relays.
type relayBatch struct {
	rd         *mmsgBatch
	slots      [relayBatchSize][]byte // slot 0 unused: pion's buffer takes its place
	size       int                    // the slots' size: len of pion's buffer
	next, have int                    // datagrams next to have-1 are due to pion
	addrs      addrCache
}

// newRelayBatch returns the batched reads of relay, the guarded socket
// pion's generator made, or nil when it has none (not Linux, not a
// *net.UDPConn).
func newRelayBatch(relay net.PacketConn) *relayBatch {
	g, ok := relay.(*guardedRelayConn)
	if !ok {
		return nil
	}
	uc, ok := g.PacketConn.(*net.UDPConn)
	if !ok {
		return nil
	}
	rd, err := newMmsgBatch(uc)
	if err != nil {
		return nil
	}
	return &relayBatch{rd: rd, addrs: newAddrCache(relayAddrBits)}
}

// readFrom puts the next datagram of the batch into p and returns its
// length and sender, reading the next batch when this one is used up.
func (b *relayBatch) readFrom(p []byte) (int, net.Addr, netip.AddrPort, error) {
	if b.next < b.have {
		n, ap := b.rd.received(b.next)
		n = copy(p, b.slots[b.next][:n])
		b.next++
		return n, b.addrs.get(ap), ap, nil
	}
	if b.size != len(p) { // the first read, or pion's buffer changed size
		b.size = len(p)
		mem := make([]byte, (relayBatchSize-1)*len(p))
		for i := 1; i < relayBatchSize; i++ {
			b.slots[i] = mem[(i-1)*len(p) : i*len(p) : i*len(p)]
			b.rd.setIn(i, b.slots[i])
		}
	}
	have, err := b.rd.recv(p, relayBatchSize)
	if err != nil {
		b.next, b.have = 0, 0
		return 0, nil, netip.AddrPort{}, err
	}
	b.next, b.have = 1, have
	n, ap := b.rd.received(0)
	return n, b.addrs.get(ap), ap, nil
}
