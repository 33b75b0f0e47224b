package server

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// peerConn is a relay socket as pion uses it, wrapped where pion's relay
// address generator makes it (relay.go), so peer-leg rules (leg = "peer")
// see each datagram between the relayed address and a peer: ReadFrom is
// direction in (peer to relay), WriteTo direction out (relay to peer). The
// client leg and signalling never pass here. ReadFrom runs on the
// allocation's own read loop; WriteTo on pion's loops, concurrently.
type peerConn struct {
	net.PacketConn
	ic    *interceptor
	relay netip.AddrPort // the bound address, as rules see it
	alloc netip.AddrPort // the relayed address pion reports (the allocation table's)
	ready *wakeQueue
	owner *delayOwner
	// counts counts every datagram as the engine decided it, for /metrics
	// and GET /trace (peerstats.go).
	counts peerCounts
	batch  *relayBatch // nil: one datagram per system call (see peerbatch.go)
	out    *relayOut   // nil: writes go to PacketConn one by one
}

func newPeerConn(pc net.PacketConn, ic *interceptor, relay, reported netip.AddrPort) *peerConn {
	c := &peerConn{PacketConn: pc, ic: ic, relay: relay, alloc: reported, ready: newWakeQueue(pc.SetReadDeadline), owner: new(delayOwner),
		batch: newRelayBatch(pc), out: newRelayOut(pc, nil)}
	ic.peers.open(c)
	return c
}

// decide asks the engine about one peer datagram; a panic passes it.
func (c *peerConn) decide(pkt *faults.Packet) (v faults.Verdict) {
	defer func() {
		if r := recover(); r != nil {
			c.ic.recovered(r, "", pkt)
			v = faults.Verdict{}
		}
	}()
	return c.ic.engine.Decide(pkt)
}

func (c *peerConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		if d, ok := c.ready.pop(); ok {
			return copy(p, d.data), d.addr, nil
		}
		n, addr, peer, err := c.read(p)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // our own wake-up (see wakeQueue)
			}
			return n, addr, err
		}
		if c.ic.allocs.peerExpired(c.alloc, peer) {
			c.counts.add(faults.In, faults.Drop, n)
			continue // its permission expired (permexpire.go)
		}
		pkt := faults.Packet{Data: p[:n], Dir: faults.In, Transport: faults.UDP, Leg: faults.PeerLeg, Client: peer, Relay: c.relay}
		v := c.decide(&pkt)
		c.counts.add(faults.In, v.Kind, n)
		if v.Action == nil {
			return n, addr, nil
		}
		if out, ok := c.readFired(pkt, v, addr); ok {
			return copy(p, out), addr, nil
		}
	}
}

// read reads the next datagram from the relay socket, or from the batch,
// and returns its sender also as the engine keys it (addrPortOf).
func (c *peerConn) read(p []byte) (int, net.Addr, netip.AddrPort, error) {
	if c.batch != nil {
		return c.batch.readFrom(p)
	}
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		return n, addr, netip.AddrPort{}, err
	}
	return n, addr, addrPortOf(addr), nil
}

// readFired applies v to the datagram from a peer, and returns what pion
// is to read instead, if anything. pkt is a copy of ReadFrom's, so that
// only a datagram a rule fired on costs an allocation.
func (c *peerConn) readFired(pkt faults.Packet, v faults.Verdict, addr net.Addr) ([]byte, bool) {
	in := &peerIn{c: c, addr: addr}
	m := message{ic: c.ic, pkt: &pkt, v: v}
	if !c.ic.apply(in, &m) && !in.ok {
		return pkt.Data, true // the effect panicked before handing anything on
	}
	return in.out, in.ok
}

func (c *peerConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	pkt := faults.Packet{Data: p, Dir: faults.Out, Transport: faults.UDP, Leg: faults.PeerLeg, Client: addrPortOf(addr), Relay: c.relay}
	v := c.decide(&pkt)
	c.counts.add(faults.Out, v.Kind, len(p))
	if v.Action == nil {
		if c.out != nil {
			return c.out.writeTo(p, addr, pkt.Client)
		}
		return c.PacketConn.WriteTo(p, addr)
	}
	return c.writeFired(pkt, v, p, addr)
}

// servedBy tells c the UDP listener loop that serves its allocation: pion
// relays the client's datagrams to peers from that loop, so writes may wait
// for the rest of its batch (relayOut). Call it before pion uses c.
func (c *peerConn) servedBy(loop *packetConn) {
	if c.out != nil && loop != nil {
		c.out.loop = loop.batch
	}
}

// writeNow sends p to the peer addr at once, after the queued writes.
func (c *peerConn) writeNow(p []byte, addr net.Addr) (int, error) {
	if c.out != nil {
		c.out.flush()
	}
	return c.PacketConn.WriteTo(p, addr)
}

// writeFired applies v to the datagram p pion writes to a peer. pkt is a
// copy of WriteTo's, so that only a datagram a rule fired on costs an
// allocation.
func (c *peerConn) writeFired(pkt faults.Packet, v faults.Verdict, p []byte, addr net.Addr) (int, error) {
	out := &peerOut{c: c, addr: addr}
	m := message{ic: c.ic, pkt: &pkt, v: v}
	if !c.ic.apply(out, &m) && !out.sent {
		return c.writeNow(p, addr)
	}
	if out.err != nil {
		return 0, out.err
	}
	return len(p), nil
}

// Close releases pending delays and closes the relay socket.
func (c *peerConn) Close() error {
	c.ic.delays.cancel(c.owner)
	c.ic.peers.close(c)
	return c.PacketConn.Close()
}

// peerIn is the path of a datagram from a peer that pion is about to read.
type peerIn struct {
	c    *peerConn
	addr net.Addr
	out  []byte
	ok   bool
}

func (u *peerIn) deliver(b []byte) { u.out, u.ok = append([]byte(nil), b...), true }

func (u *peerIn) repeat(b []byte, n int) {
	d := datagram{data: append([]byte(nil), b...), addr: u.addr}
	for range n {
		u.c.ready.push(d)
	}
}

func (u *peerIn) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	dg := datagram{data: append([]byte(nil), b...), addr: u.addr}
	ready := u.c.ready
	return u.c.ic.delays.after(u.c.owner, d, len(b), retired, func() { ready.push(dg) })
}

func (u *peerIn) reply([]byte) {} // no peer-leg action replies
func (u *peerIn) close()       {} // nor closes

// peerOut is the path of a datagram pion writes to a peer.
type peerOut struct {
	c    *peerConn
	addr net.Addr
	sent bool
	err  error
}

func (u *peerOut) write(b []byte) {
	u.sent = true
	if _, err := u.c.writeNow(b, u.addr); err != nil && u.err == nil {
		u.err = err
	}
}

func (u *peerOut) deliver(b []byte) { u.write(b) }

func (u *peerOut) repeat(b []byte, n int) {
	for range n {
		u.write(b)
	}
}

func (u *peerOut) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	cp, pc, addr := append([]byte(nil), b...), u.c.PacketConn, u.addr
	ok := u.c.ic.delays.after(u.c.owner, d, len(b), retired, func() { _, _ = pc.WriteTo(cp, addr) })
	u.sent = ok
	return ok
}

func (u *peerOut) reply([]byte) {}
func (u *peerOut) close()       {}
