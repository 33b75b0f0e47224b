package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stunfault/stunfault/internal/stunwire"
)

// The guard is the listener pion accepts from on every tcp and tls listener
// (beneath the tracking listener of track.go, above TLS, so it sees the
// plaintext stream): it keeps the listener alive through temporary accept
// errors, caps its open connections, and closes connections that stall.

// tcpLimits are one listener's bounds ([server] tcp_* in the config).
type tcpLimits struct {
	maxConns int           // open connections; beyond, new ones are closed at accept
	idle     time.Duration // no allocation and no byte for this long: closed
	frame    time.Duration // inside one message for this long: closed
}

// Accept retries: the delay after a temporary error starts at
// acceptBackoffMin and doubles up to acceptBackoffMax (net/http's Serve
// does the same).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

var (
	errIdle    = errors.New("closed: no allocation and nothing sent within tcp_idle_timeout")
	errStalled = errors.New("closed: stalled inside a message for tcp_frame_timeout")
)

// guardListener is one tcp or tls listener as pion sees it.
type guardListener struct {
	net.Listener
	lis    Listener // transport and address, for logs and /healthz
	limits tcpLimits
	allocs *allocWatch
	log    *slog.Logger

	open     atomic.Int64  // connections accepted and not yet closed
	refused  atomic.Uint64 // closed at accept: over maxConns
	timedOut atomic.Uint64 // closed by the idle or frame timeout

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	failed    chan struct{} // closed when Accept fails for good
	err       error         // why; set before failed is closed
}

func newGuardListener(ln net.Listener, lis Listener, limits tcpLimits, allocs *allocWatch, log *slog.Logger) *guardListener {
	return &guardListener{
		Listener: ln,
		lis:      lis,
		limits:   limits,
		allocs:   allocs,
		log:      log.With("listener", lis.Transport+" "+lis.Addr.String()),
		closing:  make(chan struct{}),
		failed:   make(chan struct{}),
	}
}

// Accept returns the next connection. It retries temporary errors (too many
// open files, a connection aborted before it was accepted) with backoff,
// closes connections beyond the cap, and returns an error only when the
// listener is closed or has failed for good (then /healthz says so).
func (l *guardListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.closing:
				return nil, err
			default:
			}
			if !temporaryNetError(err) {
				l.err = err
				close(l.failed) // pion's loop has ended: Accept is not called again
				l.log.Error("listener failed; it accepts no more connections", "err", err)
				return nil, err
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			l.log.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.closing:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		backoff = 0
		if l.open.Add(1) > int64(l.limits.maxConns) {
			l.open.Add(-1)
			l.refused.Add(1)
			l.log.Debug("connection refused: tcp_max_connections reached", "remote", c.RemoteAddr().String(), "max", l.limits.maxConns)
			_ = c.Close()
			continue
		}
		return newGuardConn(c, l), nil
	}
}

// Close closes the listener; Accept then returns an error, which is not a
// failure.
func (l *guardListener) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	return l.Listener.Close()
}

func (l *guardListener) listener() Listener { return l.lis }

// failure returns why the listener stopped accepting, or nil while it
// accepts (or was closed).
func (l *guardListener) failure() error {
	select {
	case <-l.failed:
		return l.err
	default:
		return nil
	}
}

// temporaryNetError reports whether an accept or a read may work when
// retried: the process or system is out of descriptors or buffers, or one
// connection went away before it was accepted.
func temporaryNetError(err error) bool {
	for _, errno := range []syscall.Errno{
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN,
		syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// guardConn is one accepted connection. Reading, it follows the frames of
// the stream and keeps a read deadline: tcp_frame_timeout after the first
// byte of a message while the rest is missing, tcp_idle_timeout after the
// last byte while the connection has no allocation. The reader above may
// set its own read deadline (tcpConn wakes itself for delayed frames): the
// earlier of the two is the socket's, and only the reader's own is
// returned to it as a timeout.
type guardConn struct {
	net.Conn
	l         *guardListener
	key       string       // remote and local address, for allocWatch
	allocs    atomic.Int32 // TURN allocations of this 5-tuple
	closeOnce sync.Once
	closeErr  error

	// Read side: one reader at a time (pion's loop for this connection).
	hdr        [8]byte // the start of a message whose size is not yet known
	nhdr       int
	remain     int         // bytes of the current message still to come
	raw        bool        // not STUN or ChannelData: no timeouts
	data       atomic.Bool // a TCP relay data connection (RFC 6062): no framing, no timeouts
	frameStart time.Time
	last       time.Time

	mu    sync.Mutex
	wake  time.Time // the reader's own read deadline
	limit time.Time // ours
}

func newGuardConn(c net.Conn, l *guardListener) *guardConn {
	gc := &guardConn{
		Conn: c,
		l:    l,
		key:  fiveTupleKey(c.RemoteAddr(), c.LocalAddr()),
		last: time.Now(),
	}
	l.allocs.add(gc)
	return gc
}

// Read reads the stream under the connection's deadlines.
func (c *guardConn) Read(p []byte) (int, error) {
	for {
		c.arm()
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.track(p[:n])
			return n, err
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		now := time.Now()
		c.mu.Lock()
		wake := c.wake
		c.mu.Unlock()
		if limit := c.due(); !limit.IsZero() && !now.Before(limit) {
			why := errIdle
			if c.nhdr > 0 || c.remain > 0 {
				why = errStalled
			}
			c.l.timedOut.Add(1)
			c.l.log.Debug("tcp connection "+why.Error(), "remote", c.RemoteAddr().String())
			_ = c.Close()
			return 0, fmt.Errorf("server: %s: %w", c.RemoteAddr(), why)
		}
		if !wake.IsZero() && !now.Before(wake) {
			return 0, err // the reader's own deadline
		}
		// Neither is due (an allocation was made meanwhile): read on.
	}
}

// SetReadDeadline sets the reader's own deadline.
func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wake = t
	return c.Conn.SetReadDeadline(earliest(c.limit, c.wake))
}

// SetDeadline sets the reader's own read deadline and the write deadline.
func (c *guardConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the connection once, and releases its place under the cap.
func (c *guardConn) Close() error {
	c.closeOnce.Do(func() {
		c.l.allocs.remove(c)
		c.l.open.Add(-1)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// due returns when the connection is to be closed unless it reads more: the
// zero time for never. Only the reader calls it.
func (c *guardConn) due() time.Time {
	switch {
	case c.raw || c.data.Load():
	case c.nhdr > 0 || c.remain > 0:
		if c.l.limits.frame > 0 {
			return c.frameStart.Add(c.l.limits.frame)
		}
	case c.allocs.Load() == 0:
		if c.l.limits.idle > 0 {
			return c.last.Add(c.l.limits.idle)
		}
	}
	return time.Time{}
}

// arm sets the socket's read deadline for the next read.
func (c *guardConn) arm() {
	limit := c.due()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = limit
	_ = c.Conn.SetReadDeadline(earliest(c.limit, c.wake))
}

// allocationGone is called when the connection's last allocation is
// deleted while its reader may be blocked without a deadline: it wakes the
// reader in tcp_idle_timeout, which then decides afresh.
func (c *guardConn) allocationGone() {
	if c.l.limits.idle <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit = earliest(c.limit, time.Now().Add(c.l.limits.idle))
	_ = c.Conn.SetReadDeadline(earliest(c.limit, c.wake))
}

// carryData is called once a ConnectionBind made this a TCP relay data
// connection: the peer's bytes follow, which are not messages, and may
// pause as long as the peer likes.
func (c *guardConn) carryData() { c.data.Store(true) }

// track follows message boundaries through b, the bytes just read.
func (c *guardConn) track(b []byte) {
	now := time.Now()
	c.last = now
	for len(b) > 0 && !c.raw && !c.data.Load() {
		if c.remain > 0 {
			k := min(c.remain, len(b))
			c.remain -= k
			b = b[k:]
			continue
		}
		if c.nhdr == 0 {
			c.frameStart = now
		}
		start := c.nhdr
		k := copy(c.hdr[start:], b)
		kind, size := stunwire.Classify(c.hdr[:start+k])
		switch kind {
		case stunwire.Incomplete:
			c.nhdr = start + k // b is used up: 8 bytes always tell
			return
		case stunwire.Invalid:
			c.raw = true // pion sees raw bytes too, and ends the connection
			return
		case stunwire.ChannelData:
			size = (size + 3) &^ 3 // padded on TCP (RFC 8656 §12.5)
		}
		c.nhdr = 0
		inFrame := size - start // bytes of this message in b
		if inFrame > len(b) {
			c.remain = inFrame - len(b)
			return
		}
		b = b[inFrame:]
	}
}

// earliest returns the earlier of two deadlines, a zero one meaning none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// allocWatch tells guarded connections whether they have a TURN allocation,
// from pion's allocation events (its 5-tuple for a TCP allocation is the
// connection's remote and local address).
type allocWatch struct {
	mu    sync.Mutex
	conns map[string]*guardConn
}

func newAllocWatch() *allocWatch { return &allocWatch{conns: map[string]*guardConn{}} }

func fiveTupleKey(src, dst net.Addr) string { return src.String() + " " + dst.String() }

func (w *allocWatch) add(c *guardConn) {
	w.mu.Lock()
	w.conns[c.key] = c
	w.mu.Unlock()
}

func (w *allocWatch) remove(c *guardConn) {
	w.mu.Lock()
	if w.conns[c.key] == c {
		delete(w.conns, c.key)
	}
	w.mu.Unlock()
}

// changed records an allocation of src/dst made (+1) or deleted (-1).
func (w *allocWatch) changed(src, dst net.Addr, delta int32) {
	if src == nil || dst == nil {
		return
	}
	w.mu.Lock()
	c := w.conns[fiveTupleKey(src, dst)]
	w.mu.Unlock()
	if c != nil && c.allocs.Add(delta) == 0 && delta < 0 {
		c.allocationGone()
	}
}
