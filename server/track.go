package server

import (
	"net"
	"sync"
)

// pion's Server.Close closes its sockets but does not wait for its read loops,
// and it never closes accepted TCP connections. The wrappers here let Close
// do both: each read loop holds one count on a WaitGroup, released the first
// time its read returns an error (after which pion's loop exits), and
// accepted connections are remembered so Close can close them.

// loopPacketConn is a net.PacketConn whose first ReadFrom error releases one
// count of loops.
type loopPacketConn struct {
	net.PacketConn
	done func()
}

func newLoopPacketConn(pc net.PacketConn, loops *sync.WaitGroup) *loopPacketConn {
	loops.Add(1)
	return &loopPacketConn{PacketConn: pc, done: sync.OnceFunc(loops.Done)}
}

func (c *loopPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.done()
	}
	return n, addr, err
}

// trackingListener remembers every accepted connection until it is closed.
type trackingListener struct {
	net.Listener
	loops *sync.WaitGroup
	done  func()
	wrap  func(net.Conn) net.Conn // the interception beneath pion's framer

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackingListener(l net.Listener, loops *sync.WaitGroup, wrap func(net.Conn) net.Conn) *trackingListener {
	loops.Add(1)
	return &trackingListener{
		Listener: l,
		wrap:     wrap,
		loops:    loops,
		done:     sync.OnceFunc(loops.Done),
		conns:    make(map[*trackedConn]struct{}),
	}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.done()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.loops.Add(1)
	tc := &trackedConn{Conn: l.wrap(c), l: l, done: sync.OnceFunc(l.loops.Done)}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeConns closes every accepted connection that is still open; pion's
// per-connection loops then see a read error and exit.
func (l *trackingListener) closeConns() {
	l.mu.Lock()
	conns := l.conns
	l.conns = map[*trackedConn]struct{}{}
	l.closed = true
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	done func()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.done()
	}
	return n, err
}

// Close is called by pion once its loop for this connection has exited (for
// whatever reason), and by closeConns.
func (c *trackedConn) Close() error {
	defer c.done()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
