package server

import (
	"net"
	"net/netip"
	"sync"
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
	_, rd := relayMmsg(relay)
	if rd == nil {
		return nil
	}
	return &relayBatch{rd: rd, addrs: newAddrCache(relayAddrBits)}
}

// relayMmsg returns relay as the guarded socket pion's generator made, and
// a batch of system calls on the UDP socket beneath it; nil, nil when it
// has none (not Linux, not a *net.UDPConn).
func relayMmsg(relay net.PacketConn) (*guardedRelayConn, *mmsgBatch) {
	g, ok := relay.(*guardedRelayConn)
	if !ok {
		return nil, nil
	}
	uc, ok := g.PacketConn.(*net.UDPConn)
	if !ok {
		return nil, nil
	}
	b, err := newMmsgBatch(uc)
	if err != nil {
		return nil, nil
	}
	return g, b
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

// relayOut is the write side of a relay socket beneath a peerConn (Linux,
// a *net.UDPConn): datagrams pion's listener read loop relays to peers
// while datagrams of its batch are still due to it wait here (at most
// relayBatchSize), and go out in one sendmmsg when the loop has handled
// its batch, before it reads again (udpBatch.flush), or when this queue is
// full; a write when nothing more is due sends the queue and then itself.
// So the datagrams of one relay keep their order, and none waits longer
// than pion takes to handle one batch. Every write here honours the relay
// guard: nothing goes to one of stunfault's own addresses.
type relayOut struct {
	guard *guardedRelayConn
	loop  *udpBatch // the listener loop whose allocation this is; nil: never queue

	mu     sync.Mutex
	wr     *mmsgBatch
	n      int
	bufs   [relayBatchSize][]byte // the queued datagrams' bytes, reused
	parked bool                   // in loop's list of queues to send
}

// newRelayOut returns the write side of relay, or nil when it has none.
// loop may be nil.
func newRelayOut(relay net.PacketConn, loop *udpBatch) *relayOut {
	g, wr := relayMmsg(relay)
	if wr == nil {
		return nil
	}
	return &relayOut{guard: g, loop: loop, wr: wr}
}

// writeTo sends p to the peer addr (to as an AddrPort), or queues it while
// the loop's batch has datagrams due.
func (o *relayOut) writeTo(p []byte, addr net.Addr, to netip.AddrPort) (int, error) {
	if own := o.guard.own(); own != nil && own.contains(to) {
		return len(p), nil // as guardedRelayConn.WriteTo: never to ourselves
	}
	o.mu.Lock()
	if o.loop != nil && o.loop.left.Load() > 0 {
		if o.n == relayBatchSize {
			o.flushLocked()
		}
		o.bufs[o.n] = append(o.bufs[o.n][:0], p...)
		if o.wr.setOut(o.n, o.bufs[o.n], to) {
			o.n++
			park := !o.parked
			o.parked = true
			o.mu.Unlock()
			if park {
				o.loop.park(o)
			}
			return len(p), nil
		}
	}
	if o.n > 0 {
		o.flushLocked()
	}
	if !o.wr.setOut(0, p, to) {
		o.mu.Unlock()
		return o.guard.PacketConn.WriteTo(p, addr) // it says why it cannot
	}
	n, err := o.wr.send(0, 1)
	o.wr.forget(0)
	o.mu.Unlock()
	if n == 1 {
		return len(p), nil
	}
	return 0, err
}

// flush sends the queued datagrams.
func (o *relayOut) flush() {
	o.mu.Lock()
	o.parked = false
	if o.n > 0 {
		o.flushLocked()
	}
	o.mu.Unlock()
}

func (o *relayOut) flushLocked() {
	for i := 0; i < o.n; {
		n, err := o.wr.send(i, o.n)
		if err != nil {
			n = max(n, 1) // lost, as a failed WriteTo's datagram; skip it
		}
		i += n
	}
	o.n = 0
}
