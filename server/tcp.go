package server

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/stunframe"
)

// tcpConn is the net.Conn beneath pion's own STUN framer for one accepted
// TCP connection. It frames the client's byte stream itself
// (stunframe.Reader), shows each whole frame to the engine, and hands pion
// only whole frames, so pion's framer never sees half a message. Outbound,
// pion writes one whole message per Write, which is decided the same way.
//
// What inbound byte changes do on a stream: corrupting an attribute or the
// FINGERPRINT keeps the length, so the stream stays in step and pion sees a
// wrong value; corrupting the header breaks pion's framing, and pion closes
// the connection; truncate hands pion the cut frame and then ends the
// stream (EOF), since nothing after it could be framed again. Outbound, a
// truncated frame desynchronises the client's stream.
type tcpConn struct {
	net.Conn
	ic     *interceptor
	client netip.AddrPort
	fr     *stunframe.Reader
	timers *timerSet

	// Read side: only pion's per-connection read loop reads.
	out    []byte      // bytes decided on and due to pion
	raw    bool        // the stream could not be framed: pass bytes through
	reply  []byte      // scratch for injected errors
	eof    bool        // the stream ends after out
	bound  atomic.Bool // a ConnectionBind succeeded: relayed data follows (RFC 6062)
	readMu sync.Mutex
	ready  [][]byte // delayed frames now due, oldest first
	wake   bool

	closeOnce sync.Once
	closeErr  error
}

func newTCPConn(c net.Conn, ic *interceptor) *tcpConn {
	tc := &tcpConn{Conn: c, ic: ic, timers: newTimerSet(ic.clock, maxPendingDelays)}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		tc.client = a.AddrPort()
	}
	tc.fr = stunframe.NewReader(c)
	return tc
}

// Read gives pion the next bytes of whole frames the engine let through.
func (c *tcpConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.eof {
			return 0, io.EOF
		}
		if f, ok := c.popReady(); ok {
			c.out = f
			continue
		}
		if !c.raw && c.bound.Load() {
			c.raw = true // peer data now, not STUN: never framed or faulted
			c.out = append([]byte(nil), c.fr.Buffered()...)
			continue
		}
		if c.raw {
			return c.Conn.Read(p)
		}
		frame, err := c.fr.Next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				continue // our own wake-up for a delayed frame
			case errors.Is(err, stunframe.ErrInvalid):
				// Not STUN: let pion see what it would have seen.
				c.raw = true
				c.out = append([]byte(nil), c.fr.Buffered()...)
				continue
			}
			return 0, err
		}
		c.out = c.decideIn(frame)
	}
}

// decideIn returns what pion gets for one inbound frame (nil: nothing).
// frame is only valid until the next c.fr.Next, so anything kept is copied.
func (c *tcpConn) decideIn(frame []byte) []byte {
	pkt := faults.Packet{Data: frame, Dir: faults.In, Transport: faults.TCP, Client: c.client}
	v := c.ic.decide(&pkt)
	switch v.Kind {
	case faults.Pass:
		return frame
	case faults.Drop:
		return nil
	case faults.Error:
		if c.reply = c.ic.appendErrorReply(c.reply[:0], &pkt, v); len(c.reply) > 0 {
			_, _ = c.Conn.Write(c.reply)
		}
		return nil
	case faults.Delay:
		f := append([]byte(nil), frame...)
		if c.timers.after(v, func() { c.pushReady(f) }) {
			return nil
		}
		c.ic.delayOverflows.Add(1)
		return frame
	case faults.Duplicate:
		out := append([]byte(nil), frame...)
		for range copies(v) {
			out = append(out, frame...)
		}
		return out
	case faults.Truncate:
		out, _ := c.ic.mutated(frame, v)
		c.eof = true
		return out
	case faults.Corrupt:
		out, _ := c.ic.mutated(frame, v)
		return out
	case faults.Close:
		c.eof = true
		_ = c.Close()
		return nil
	}
	return frame
}

// Write sends one message pion wrote, as the engine decides. It always
// reports the whole of p written unless the socket fails.
func (c *tcpConn) Write(p []byte) (int, error) {
	if c.bound.Load() {
		return c.Conn.Write(p) // relayed peer data after ConnectionBind
	}
	if isConnectionBindSuccess(p) {
		defer c.bound.Store(true)
	}
	if n, err := stunframe.Size(p); err != nil || n != len(p) {
		return c.Conn.Write(p) // not exactly one frame: not ours to judge
	}
	pkt := faults.Packet{Data: p, Dir: faults.Out, Transport: faults.TCP, Client: c.client}
	v := c.ic.engine.Decide(&pkt)
	switch v.Kind {
	case faults.Drop:
		return len(p), nil
	case faults.Delay:
		b := append([]byte(nil), p...)
		if c.timers.after(v, func() { _, _ = c.Conn.Write(b) }) {
			return len(p), nil
		}
		c.ic.delayOverflows.Add(1)
	case faults.Duplicate:
		out := append([]byte(nil), p...)
		for range copies(v) {
			out = append(out, p...)
		}
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	case faults.Truncate, faults.Corrupt, faults.MappedAddress:
		if out, ok := c.ic.mutated(p, v); ok {
			if _, err := c.Conn.Write(out); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	case faults.Close:
		_ = c.Close()
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Close stops pending delays and closes the connection; it is idempotent.
func (c *tcpConn) Close() error {
	c.closeOnce.Do(func() {
		c.timers.stop()
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

func (c *tcpConn) pushReady(f []byte) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.ready = append(c.ready, f)
	if !c.wake {
		c.wake = true
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

func (c *tcpConn) popReady() ([]byte, bool) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.wake {
		c.wake = false
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	if len(c.ready) == 0 {
		return nil, false
	}
	f := c.ready[0]
	c.ready = c.ready[1:]
	return f, true
}
