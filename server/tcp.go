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
	"github.com/stunfault/stunfault/server/trace"
)

// tcpConn is the net.Conn beneath pion's own STUN framer for one accepted
// TCP connection. It frames the client's byte stream itself
// (stunframe.Reader), shows each whole frame to the engine, and hands pion
// only whole frames, so pion's framer never sees half a message. Outbound,
// pion writes one whole message per Write, which is decided the same way.
// Verdicts are applied through a path (tcpIn, tcpOut).
//
// What inbound byte changes do on a stream: corrupting an attribute or the
// FINGERPRINT keeps the length, so the stream stays in step and pion sees a
// wrong value; anything else that hands pion less or other than a whole
// frame (truncate, a corrupted header) ends the stream (EOF) after it,
// since nothing after it could be framed again, and pion closes the
// connection. Outbound, a truncated frame desynchronises the client's
// stream.
type tcpConn struct {
	net.Conn
	ic     *interceptor
	client netip.AddrPort
	fr     *stunframe.Reader
	ready  *wakeQueue
	owner  *delayOwner

	// For the trace: the connection's address as it names it, and the
	// time of the Read pion handles (see readTrace).
	traceAddr trace.Local
	tr        readTrace

	// Read side: only pion's per-connection read loop reads.
	in      tcpIn
	pkt     faults.Packet
	msg     message
	bound   atomic.Bool // a ConnectionBind succeeded: relayed data follows (RFC 6062)
	out     []byte      // bytes decided on and due to pion
	again   int         // more copies of dup due after out (duplicate)
	dup     []byte      // valid until the next c.fr.Next
	raw     bool        // the stream could not be framed: pass bytes through
	scratch []byte      // for injected errors
	eof     bool        // the stream ends after out
	pending bool        // pend is a frame decided in a batch, its verdict not applied yet
	pend    faults.Packet
	pendV   faults.Verdict

	// Write side: answers pion writes while it handles the frames of one
	// Read wait in wbuf and go out in one write when pion reads again,
	// before that read can block (see writeAnswer). Every other write
	// sends wbuf first, so the wire order is the order of the Writes.
	wmu  sync.Mutex
	open bool   // pion is handling the frames of the last Read
	wbuf []byte // at most maxQueuedAnswers bytes
	werr error  // the error of a flush of wbuf, returned by the next write

	closeOnce sync.Once
	closeErr  error
}

func newTCPConn(c net.Conn, ic *interceptor) *tcpConn {
	tc := &tcpConn{Conn: c, ic: ic, ready: newWakeQueue(c.SetReadDeadline), owner: new(delayOwner)}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		tc.client = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	tc.traceAddr = ic.trace.Local(addrPort(c.LocalAddr()))
	tc.fr = stunframe.NewReader(c)
	tc.in.c = tc
	return tc
}

// maxQueuedAnswers bounds the answers held for one batch (see
// writeAnswer): past it, an answer goes out at once.
const maxQueuedAnswers = 64 << 10

// Read gives pion the next bytes of whole frames the engine let through.
//
// One Read hands pion every whole frame already buffered that fits in p
// (the client's stream is read 4 KiB at a time, see stunframe.Reader), so
// pion's framer copies once per batch rather than once per frame. A frame
// in a batch that a rule fires on ends the batch: its verdict is applied
// at the next Read, once pion has handled (and answered) the frames before
// it, so replies, closes and delays keep their place in the stream.
func (c *tcpConn) Read(p []byte) (int, error) {
	c.flush() // pion handled the last batch: its answers go out before a read can block
	c.tr.wait()
	if c.pending {
		c.pending = false
		c.applyIn(c.pend.Data, &c.pend, c.pendV)
	}
	n, err := c.read(p)
	if err != nil || n == 0 {
		return n, err
	}
	if !isConnectionBindRequest(p[:n]) {
		n = c.batch(p, n)
	}
	c.wmu.Lock()
	c.open = true
	c.wmu.Unlock()
	return n, nil
}

// batch appends to p[:n] the whole frames already buffered that fit and
// pass, and returns the new length. A frame a rule fires on is decided and
// left pending.
func (c *tcpConn) batch(p []byte, n int) int {
	for n < len(p) && len(c.out) == 0 && c.again == 0 && !c.eof && !c.raw && !c.bound.Load() && !c.ready.busy.Load() {
		size, err := stunframe.Size(c.fr.Buffered())
		if err != nil || size > len(p)-n {
			return n
		}
		frame, err := c.fr.Next() // buffered: no read
		if err != nil {
			return n
		}
		pkt := &c.pend
		*pkt = faults.Packet{Data: frame, Dir: faults.In, Transport: faults.TCP, Client: c.client}
		v := c.ic.decide(pkt)
		if v.Action != nil {
			c.pending, c.pendV = true, v // recorded when applied
			return n
		}
		c.ic.record(c.tr.get(), c.traceAddr, pkt, &v, nil)
		n += copy(p[n:], frame)
		if isConnectionBindRequest(frame) {
			return n // peer data may follow its answer: frame nothing after it
		}
	}
	return n
}

// read hands pion the next bytes: what a verdict left due, else the next
// frame, decided. It blocks only when nothing is due.
func (c *tcpConn) read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if c.again > 0 {
			c.again--
			c.out = c.dup
			continue
		}
		c.dup = nil
		if c.eof {
			return 0, io.EOF
		}
		if f, ok := c.ready.pop(); ok {
			c.out = f.data
			continue
		}
		if !c.raw && c.bound.Load() {
			c.raw = true // peer data now, not STUN: never framed or faulted
			c.out = append([]byte(nil), c.fr.Buffered()...)
			continue
		}
		if c.raw {
			n, err := c.Conn.Read(p)
			var ne net.Error
			if n == 0 && errors.As(err, &ne) && ne.Timeout() {
				continue // our own wake-up: a frame queued for pion (an expiry's Refresh)
			}
			return n, err
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
		c.tr.read(c.ic.trace) // shared by the frames this Read batches
		c.decideIn(frame)
	}
}

// decideIn sets what pion gets for one inbound frame (c.out, c.again).
// frame is only valid until the next c.fr.Next, so anything kept longer is
// copied.
func (c *tcpConn) decideIn(frame []byte) {
	pkt := &c.pkt // reused, like c.msg: a message costs no allocation
	*pkt = faults.Packet{Data: frame, Dir: faults.In, Transport: faults.TCP, Client: c.client}
	v := c.ic.decide(pkt)
	c.applyIn(frame, pkt, v)
}

// applyIn applies the verdict v on the inbound frame pkt and records it.
func (c *tcpConn) applyIn(frame []byte, pkt *faults.Packet, v faults.Verdict) {
	if v.Action == nil { // no rule fired, no refusal
		c.ic.record(c.tr.get(), c.traceAddr, pkt, &v, nil)
		c.out = frame
		return
	}
	c.in.delivered, c.in.answer = false, nil
	m := &c.msg
	*m = message{ic: c.ic, pkt: pkt, v: v, scratch: &c.scratch}
	if !c.ic.apply(&c.in, m) && !c.in.delivered {
		c.out = frame
	}
	c.ic.record(c.tr.get(), c.traceAddr, pkt, &v, m.sent)
	if c.in.answer != nil {
		_, _ = c.writeNow(c.in.answer)
		c.in.answer = nil
	}
	*m = message{}
}

// Write sends one message pion wrote, as the engine decides. It always
// reports the whole of p written unless the socket fails.
func (c *tcpConn) Write(p []byte) (int, error) {
	if c.bound.Load() {
		return c.writeNow(p) // relayed peer data after ConnectionBind
	}
	if isConnectionBindSuccess(p) {
		defer c.carryData()
	}
	if n, err := stunframe.Size(p); err != nil || n != len(p) {
		return c.writeNow(p) // not exactly one frame: not ours to judge
	}
	pkt := faults.Packet{Data: p, Dir: faults.Out, Transport: faults.TCP, Client: c.client}
	v := c.ic.decide(&pkt)
	if v.Action == nil {
		c.ic.record(c.tr.answerStamp(p), c.traceAddr, &pkt, &v, nil)
		return c.writeAnswer(p)
	}
	return c.writeFired(pkt, v, p)
}

// writeFired applies v to the outbound frame p. pkt is a copy of the
// caller's, so that only a message a rule fired on costs an allocation.
func (c *tcpConn) writeFired(pkt faults.Packet, v faults.Verdict, p []byte) (int, error) {
	out := &tcpOut{c: c}
	m := message{ic: c.ic, pkt: &pkt, v: v}
	applied := c.ic.apply(out, &m)
	c.ic.record(c.tr.answerStamp(p), c.traceAddr, &pkt, &v, m.sent)
	if !applied && !out.sent {
		return c.writeNow(p)
	}
	if out.err != nil {
		return 0, out.err
	}
	return len(p), nil
}

// Close releases pending delays and closes the connection; it is
// idempotent.
func (c *tcpConn) Close() error {
	c.closeOnce.Do(func() {
		c.ic.allocs.removeTCP(c)
		c.ic.delays.cancel(c.owner)
		// The answers pion wrote before closing go first, unless a write
		// is stuck (a client that does not read): Close must not wait.
		if c.wmu.TryLock() {
			c.flushLocked()
			c.wmu.Unlock()
		}
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// writeAnswer writes a message pion wrote that no rule fired on. A STUN
// response written while pion handles the frames of one Read is an answer
// from its read loop (relay goroutines write indications and ChannelData):
// it waits in wbuf and goes out with the batch's other answers in one write
// when pion reads again (flush). Anything else goes out at once, after
// wbuf.
func (c *tcpConn) writeAnswer(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.open && p[0]&0xC1 == 0x01 && len(c.wbuf)+len(p) <= maxQueuedAnswers {
		if err := c.werr; err != nil {
			return 0, err
		}
		c.wbuf = append(c.wbuf, p...)
		return len(p), nil
	}
	return c.writeLocked(p)
}

// writeNow writes b at once, after the answers waiting in wbuf.
func (c *tcpConn) writeNow(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *tcpConn) writeLocked(b []byte) (int, error) {
	c.flushLocked()
	if err := c.werr; err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// flush sends the answers waiting in wbuf and ends the batch.
func (c *tcpConn) flush() {
	c.wmu.Lock()
	c.open = false
	c.flushLocked()
	c.wmu.Unlock()
}

func (c *tcpConn) flushLocked() {
	if len(c.wbuf) == 0 {
		return
	}
	if _, err := c.Conn.Write(c.wbuf); err != nil && c.werr == nil {
		c.werr = err
	}
	c.wbuf = c.wbuf[:0]
}

// tcpIn is the path of a frame pion is about to read.
type tcpIn struct {
	c         *tcpConn
	delivered bool
	answer    []byte // the reply to send once the trace holds the message
}

func (t *tcpIn) deliver(b []byte) {
	t.delivered = true
	t.c.out = b
	if n, err := stunframe.Size(b); err != nil || n != len(b) {
		t.c.eof = true // not a whole frame: the stream cannot be framed after it
	}
}

// repeat hands b on again n times. b is the frame (or part of it), valid
// until the next frame is read, which happens only once the copies are out.
func (t *tcpIn) repeat(b []byte, n int) {
	t.c.again, t.c.dup = n, b
}

func (t *tcpIn) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	f, ready := datagram{data: append([]byte(nil), b...)}, t.c.ready
	return t.c.ic.delays.after(t.c.owner, d, len(b), retired, func() { ready.push(f) })
}

// reply keeps b to send after the message is recorded (see udpIn.reply).
func (t *tcpIn) reply(b []byte) { t.answer = b }

func (t *tcpIn) close() {
	t.delivered = true
	t.c.eof = true
	_ = t.c.Close()
}

// tcpOut is the path of a frame pion writes.
type tcpOut struct {
	c    *tcpConn
	sent bool
	err  error
}

func (t *tcpOut) deliver(b []byte) {
	t.sent = true
	if _, err := t.c.writeNow(b); err != nil && t.err == nil {
		t.err = err
	}
}

// repeat writes the n copies in one vectored write where the socket
// supports it, so no copy of b is made and no other message lands between
// them.
func (t *tcpOut) repeat(b []byte, n int) {
	bufs := make(net.Buffers, n)
	for i := range bufs {
		bufs[i] = b
	}
	t.sent = true
	t.c.wmu.Lock()
	t.c.flushLocked()
	_, err := bufs.WriteTo(t.c.Conn)
	t.c.wmu.Unlock()
	if err != nil && t.err == nil {
		t.err = err
	}
}

func (t *tcpOut) later(d time.Duration, b []byte, retired <-chan struct{}) bool {
	cp, c := append([]byte(nil), b...), t.c
	ok := t.c.ic.delays.after(t.c.owner, d, len(b), retired, func() { _, _ = c.writeNow(cp) })
	t.sent = ok
	return ok
}

func (t *tcpOut) reply([]byte) {} // outbound messages are answers already

func (t *tcpOut) close() {
	t.sent = true
	_ = t.c.Close()
}
