package server

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/trace"
)

// packetConn is the net.PacketConn pion serves a UDP listener on: every
// datagram in (ReadFrom) and out (WriteTo) is shown to the engine first,
// and a rule's verdict is applied through a path (udpIn, udpOut).
//
// ReadFrom runs on pion's single read loop. A pass returns pion's own buffer
// untouched: no copy, no goroutine hop, no allocation. A delayed or
// duplicated datagram waits in ready (see wakeQueue), and the timeout that
// waking the read causes is swallowed here: any error from ReadFrom ends
// pion's read loop, and with it the listener.
//
// WriteTo is called concurrently by pion's read loop and relay goroutines,
// so it shares nothing unlocked.
type packetConn struct {
	net.PacketConn
	ic    *interceptor
	loop  loopToken
	ready *wakeQueue
	owner *delayOwner

	// For the trace: the socket's address as it names it, and what the
	// read loop keeps (see readTrace).
	traceAddr trace.Local
	tr        readTrace

	// The read side's state, reused so that a message costs no allocation:
	// only pion's read loop reads.
	in      udpIn
	pkt     faults.Packet
	msg     message
	scratch []byte    // for injected errors
	batch   *udpBatch // nil: one datagram per system call (see udpbatch.go)
	steer   *steering // the listener's, with several read loops; else nil (steer.go)
	local   net.Addr  // the socket's, asked for by pion with every message

	datagrams atomic.Uint64 // read from the socket (stats: listeners[].loops)
}

// datagram is a message due to pion's reader: its bytes and, on UDP, its
// sender.
type datagram struct {
	data []byte
	addr net.Addr
	// steered: read by another loop of the listener for this one to
	// serve (steer.go), as if this loop had read it; client is addr as
	// clientAddr makes it.
	steered bool
	client  netip.AddrPort
}

func newPacketConn(pc net.PacketConn, ic *interceptor, loops *sync.WaitGroup) *packetConn {
	c := &packetConn{
		PacketConn: pc,
		ic:         ic,
		loop:       newLoopToken(loops),
		ready:      newWakeQueue(pc.SetReadDeadline),
		owner:      new(delayOwner),
		local:      pc.LocalAddr(),
		traceAddr:  ic.trace.Local(addrPort(pc.LocalAddr())),
	}
	c.in.c = c
	if g, ok := pc.(*udpGuard); ok {
		c.batch = newUDPBatch(g)
	}
	return c
}

// ReadFrom returns the next datagram pion should handle.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.tr.flush(c.ic, c.traceAddr) // before p and c.pkt are reused
	for {
		var (
			n      int
			addr   net.Addr
			client netip.AddrPort
		)
		if d, ok := c.ready.pop(); ok {
			c.tr.read(c.ic.trace) // pion answers it now
			if !d.steered {
				return copy(p, d.data), d.addr, nil
			}
			n, addr, client = copy(p, d.data), d.addr, d.client
		} else {
			var err error
			n, addr, client, err = c.read(p)
			if err != nil {
				if c.ownWakeUp(err) {
					continue
				}
				return n, addr, err
			}
			c.datagrams.Add(1)
			if !client.IsValid() {
				return n, addr, nil // not a UDP sender: nothing to decide on
			}
			if c.steer != nil {
				if l := c.steer.target(c, p[:n], client); l != nil {
					forward(l, p[:n], addr, client)
					continue
				}
			}
		}
		pkt := &c.pkt
		*pkt = faults.Packet{Data: p[:n], Dir: faults.In, Transport: faults.UDP, Client: client}
		v := c.ic.decide(pkt)
		if v.Action == nil { // no rule fired, no refusal
			c.tr.in(c.ic, c.traceAddr, pkt, &v)
			return n, addr, nil
		}
		if n, ok := c.readFired(p, v, addr); ok {
			return n, addr, nil
		}
	}
}

// ownWakeUp reports whether err, from reading the socket, is the
// interception's own wake-up (a read deadline, see wakeQueue): never pion's
// business. Otherwise the read loop ends with err. Out of ReadFrom, as
// readFired is, so that the path of a passed datagram is dense in the
// instruction cache.
func (c *packetConn) ownWakeUp(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	c.loop.ended()
	return false
}

// readFired applies v, the verdict of a rule (or of the relay guard) that
// fired on c.pkt, the datagram in p from addr, and returns the length of
// what pion gets in p; ok is false when pion gets nothing (read on).
func (c *packetConn) readFired(p []byte, v faults.Verdict, addr net.Addr) (n int, ok bool) {
	pkt, in, m := &c.pkt, &c.in, &c.msg
	in.addr, in.out, in.ok, in.answer = addr, nil, false, nil
	*m = message{ic: c.ic, pkt: pkt, v: v, scratch: &c.scratch}
	if !c.ic.apply(in, m) && !in.ok {
		in.out, in.ok = pkt.Data, true // the effect panicked before handing anything on
	}
	c.ic.record(c.tr.get(), c.traceAddr, pkt, &v, m.sent) // before p is overwritten
	if in.answer != nil {
		// An answer to a datagram of the batch, as pion's are: it may
		// wait for the batch's other answers (a copy: the scratch is
		// reused).
		if c.batch == nil || !c.batch.answer(in.answer, pkt.Client) {
			_, _ = c.write(in.answer, addr, pkt.Client)
		}
		in.answer = nil
	}
	*m = message{}
	if !in.ok {
		return 0, false
	}
	return in.copyTo(p), true
}

// read reads the next datagram from the batch, or from the socket, and
// returns its sender also as the engine keys it (clientAddr); that is the
// zero AddrPort when the sender is not a UDP address. A read from the
// socket is stamped with the trace's time once (see readStamp).
func (c *packetConn) read(p []byte) (n int, addr net.Addr, client netip.AddrPort, err error) {
	if c.batch != nil && c.batch.due() {
		return c.batch.readFrom(p)
	}
	c.tr.wait()
	if c.batch != nil {
		n, addr, client, err = c.batch.readFrom(p)
	} else {
		n, addr, err = c.PacketConn.ReadFrom(p)
		if ua, ok := addr.(*net.UDPAddr); ok {
			client = clientAddr(ua)
		}
	}
	if err == nil {
		c.tr.read(c.ic.trace)
	}
	return n, addr, client, err
}

// write sends p to addr at once (after the batch's queued answers). to is
// addr as clientAddr makes it, or the zero AddrPort when addr is not UDP.
func (c *packetConn) write(p []byte, addr net.Addr, to netip.AddrPort) (int, error) {
	if c.batch != nil {
		return c.batch.writeTo(c.PacketConn, p, addr, to)
	}
	return c.PacketConn.WriteTo(p, addr)
}

// WriteTo sends pion's datagram p to addr, as the engine decides.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.write(p, addr, netip.AddrPort{})
	}
	pkt := faults.Packet{Data: p, Dir: faults.Out, Transport: faults.UDP, Client: clientAddr(ua)}
	if c.steer != nil {
		c.steer.sent(c, p, pkt.Client)
	}
	v := c.ic.decide(&pkt)
	if v.Action == nil {
		// A STUN response is an answer from pion's read loop (relay
		// goroutines write indications and ChannelData): it is traced
		// with the read's stamp and may wait for the batch's other
		// answers.
		if !isAnswer(p) {
			c.ic.record(0, c.traceAddr, &pkt, &v, nil)
			return c.write(p, addr, pkt.Client)
		}
		c.tr.answer(c.ic, c.traceAddr, &pkt, &v, nil)
		if c.batch != nil && c.batch.answer(p, pkt.Client) {
			return len(p), nil
		}
		return c.write(p, addr, pkt.Client)
	}
	return c.writeFired(pkt, v, p, addr)
}

// writeFired applies v to the outbound datagram p. pkt is a copy of the
// caller's, so that only a message a rule fired on costs an allocation.
func (c *packetConn) writeFired(pkt faults.Packet, v faults.Verdict, p []byte, addr net.Addr) (int, error) {
	out := &udpOut{c: c, addr: addr, to: pkt.Client}
	m := message{ic: c.ic, pkt: &pkt, v: v}
	at := trace.Stamp(0)
	if isAnswer(p) {
		c.tr.flush(c.ic, c.traceAddr) // the message it answers first
		at = c.tr.get()
	}
	applied := c.ic.apply(out, &m)
	c.ic.record(at, c.traceAddr, &pkt, &v, m.sent)
	if !applied && !out.sent {
		return c.write(p, addr, pkt.Client)
	}
	if out.err != nil {
		return 0, out.err
	}
	return len(p), nil
}

// LocalAddr returns the socket's address (pion asks for it with every
// message, to log).
func (c *packetConn) LocalAddr() net.Addr { return c.local }

// Close releases pending delays and closes the socket.
func (c *packetConn) Close() error {
	c.ic.delays.cancel(c.owner)
	return c.PacketConn.Close()
}

// udpIn is the path of a datagram pion is about to read: what it delivers
// goes into pion's buffer (copyTo).
type udpIn struct {
	c      *packetConn
	addr   net.Addr // the datagram's sender
	out    []byte   // what pion gets
	ok     bool     // out is set; false: nothing (read on)
	answer []byte   // the reply to send once the trace holds the message
}

func (u *udpIn) deliver(b []byte) { u.out, u.ok = b, true }

// copyTo puts what was delivered into pion's buffer p and returns its length.
func (u *udpIn) copyTo(p []byte) int {
	b := u.out
	u.out = nil
	if len(b) > 0 && len(p) > 0 && &b[0] == &p[0] {
		return len(b) // the datagram itself, or a prefix (truncate): nothing to copy
	}
	return copy(p, b)
}

func (u *udpIn) repeat(b []byte, n int) {
	d := datagram{data: append([]byte(nil), b...), addr: u.addr} // one copy, shared: read-only
	for range n {
		u.c.ready.push(d)
	}
}

func (u *udpIn) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	dg := datagram{data: append([]byte(nil), b...), addr: u.addr}
	ready := u.c.ready
	return u.c.ic.delays.after(u.c.owner, d, len(b), retired, func() { ready.push(dg) })
}

// reply keeps b to send after the message is recorded, so that whoever sees
// the answer finds the message in the trace. b is the reused scratch, valid
// until the next message.
func (u *udpIn) reply(b []byte) { u.answer = b }

func (u *udpIn) close() {} // not on UDP: rules asking for it do not validate

// udpOut is the path of a datagram pion writes.
type udpOut struct {
	c    *packetConn
	addr net.Addr
	to   netip.AddrPort // addr as clientAddr makes it
	sent bool           // something was written
	err  error          // the first write error
}

func (u *udpOut) write(b []byte) {
	u.sent = true
	if _, err := u.c.write(b, u.addr, u.to); err != nil && u.err == nil {
		u.err = err
	}
}

func (u *udpOut) deliver(b []byte) { u.write(b) }

func (u *udpOut) repeat(b []byte, n int) {
	for range n {
		u.write(b)
	}
}

func (u *udpOut) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	cp, pc, addr := append([]byte(nil), b...), u.c.PacketConn, u.addr
	ok := u.c.ic.delays.after(u.c.owner, d, len(b), retired, func() { _, _ = pc.WriteTo(cp, addr) })
	u.sent = ok
	return ok
}

func (u *udpOut) reply([]byte) {} // outbound messages are answers already
func (u *udpOut) close()       {} // not on UDP

// clientAddr is a client's address as the engine keys it: IPv4 unmapped.
// The kernel's recvfrom gives an IPv4 sender in 4 bytes and x/net's
// recvmmsg in 16 (::ffff:a.b.c.d); without this one client would be two
// to the transmission tracker, machines keyed by client, and the trace.
func clientAddr(ua *net.UDPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(ua.IP)
	if ua.Zone != "" {
		ip = ip.WithZone(ua.Zone)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port)) //nolint:gosec // a UDP port
}
