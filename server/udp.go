package server

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// packetConn is the net.PacketConn pion serves a UDP listener on: every
// datagram in (ReadFrom) and out (WriteTo) is shown to the engine first.
//
// ReadFrom runs on pion's single read loop. A pass returns pion's own buffer
// untouched: no copy, no goroutine hop, no allocation. A delayed or
// duplicated datagram waits in ready; when its timer fires, the read blocked
// in the socket is woken with SetReadDeadline(now), and the timeout that
// causes is swallowed here: any error from ReadFrom ends pion's read loop,
// and with it the listener.
//
// WriteTo is called concurrently by pion's read loop and relay goroutines,
// so it shares nothing unlocked.
type packetConn struct {
	net.PacketConn
	ic     *interceptor
	done   func() // releases the server's count of read loops
	timers *timerSet

	reply []byte // scratch for injected errors; used by the reader only

	busy  atomic.Bool // ready is not empty or wake is set: the reader must look
	mu    sync.Mutex
	ready []datagram // due for pion, oldest first
	wake  bool       // a past read deadline is set to wake the reader
}

type datagram struct {
	data []byte
	addr net.Addr
}

func newPacketConn(pc net.PacketConn, ic *interceptor, loops *sync.WaitGroup) *packetConn {
	loops.Add(1)
	return &packetConn{
		PacketConn: pc,
		ic:         ic,
		done:       sync.OnceFunc(loops.Done),
		timers:     newTimerSet(ic.clock, maxPendingDelays),
	}
}

// ReadFrom returns the next datagram pion should handle.
func (c *packetConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		if d, ok := c.popReady(); ok {
			return copy(p, d.data), d.addr, nil
		}
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // our own wake-up (see popReady); never pion's business
			}
			c.done()
			return n, addr, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return n, addr, nil
		}
		pkt := faults.Packet{Data: p[:n], Dir: faults.In, Transport: faults.UDP, Client: ua.AddrPort()}
		v := c.ic.decide(&pkt)
		switch v.Kind {
		case faults.Pass:
			return n, addr, nil
		case faults.Drop:
			continue
		case faults.Error:
			if c.reply = c.ic.appendErrorReply(c.reply[:0], &pkt, v); len(c.reply) > 0 {
				_, _ = c.PacketConn.WriteTo(c.reply, addr)
			}
			continue
		case faults.Delay:
			d := datagram{data: append([]byte(nil), p[:n]...), addr: addr}
			if c.timers.after(v, func() { c.pushReady(d) }) {
				continue
			}
			c.ic.delayOverflows.Add(1)
			return n, addr, nil
		case faults.Duplicate:
			for range copies(v) {
				c.pushReady(datagram{data: append([]byte(nil), p[:n]...), addr: addr})
			}
			return n, addr, nil
		case faults.Truncate, faults.Corrupt:
			// The copy goes to pion in pion's own buffer: this datagram's
			// bytes, which pion reads before its next ReadFrom.
			out, _ := c.ic.mutated(p[:n], v)
			return copy(p, out), addr, nil
		}
		// Close and MappedAddress do not apply inbound on UDP (rules that
		// ask for them are rejected when compiled).
		return n, addr, nil
	}
}

// WriteTo sends pion's datagram p to addr, as the engine decides.
func (c *packetConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return c.PacketConn.WriteTo(p, addr)
	}
	pkt := faults.Packet{Data: p, Dir: faults.Out, Transport: faults.UDP, Client: ua.AddrPort()}
	v := c.ic.engine.Decide(&pkt)
	switch v.Kind {
	case faults.Drop:
		return len(p), nil
	case faults.Delay:
		b := append([]byte(nil), p...)
		if c.timers.after(v, func() { _, _ = c.PacketConn.WriteTo(b, addr) }) {
			return len(p), nil
		}
		c.ic.delayOverflows.Add(1)
	case faults.Duplicate:
		for range copies(v) {
			if _, err := c.PacketConn.WriteTo(p, addr); err != nil {
				return 0, err
			}
		}
	case faults.Truncate, faults.Corrupt, faults.MappedAddress:
		if out, ok := c.ic.mutated(p, v); ok {
			if _, err := c.PacketConn.WriteTo(out, addr); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.PacketConn.WriteTo(p, addr)
}

// Close stops pending delays and closes the socket.
func (c *packetConn) Close() error {
	c.timers.stop()
	return c.PacketConn.Close()
}

func (c *packetConn) pushReady(d datagram) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready = append(c.ready, d)
	c.busy.Store(true)
	if !c.wake {
		c.wake = true
		// Wake the blocked read now (wall time: this is not a wait).
		_ = c.PacketConn.SetReadDeadline(time.Now())
	}
}

// popReady returns the oldest due datagram. Taking the lock also clears a
// wake-up deadline, so the next read blocks again.
func (c *packetConn) popReady() (datagram, bool) {
	if !c.busy.Load() {
		return datagram{}, false // the fast path: no lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake {
		c.wake = false
		_ = c.PacketConn.SetReadDeadline(time.Time{})
	}
	if len(c.ready) == 0 {
		c.busy.Store(false)
		return datagram{}, false
	}
	d := c.ready[0]
	c.ready[0] = datagram{}
	c.ready = c.ready[1:]
	if len(c.ready) == 0 {
		c.busy.Store(false)
	}
	return d, true
}
