package server

import (
	"net"
	"sync"
)

// pion's Server.Close closes its sockets but does not wait for its read loops,
// and it never closes accepted TCP connections. The wrappers here let Close
// do both: each read loop (a UDP socket's, the TCP accept loop, each
// accepted connection's) holds one loopToken, released the first time its
// read returns an error (after which pion's loop exits), and accepted
// connections are remembered so Close can close them.

// loopToken is one count of a pion read loop on the server's WaitGroup.
type loopToken struct{ done func() }

func newLoopToken(loops *sync.WaitGroup) loopToken {
	loops.Add(1)
	return loopToken{done: sync.OnceFunc(loops.Done)}
}

// ended releases the count; later calls do nothing. Call it when the loop's
// read fails: pion's loop then exits.
func (t loopToken) ended() { t.done() }

// loopPacketConn is a net.PacketConn whose first ReadFrom error ends its
// loop.
type loopPacketConn struct {
	net.PacketConn
	loop loopToken
}

func newLoopPacketConn(pc net.PacketConn, loops *sync.WaitGroup) *loopPacketConn {
	return &loopPacketConn{PacketConn: pc, loop: newLoopToken(loops)}
}

func (c *loopPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		c.loop.ended()
	}
	return n, addr, err
}

// trackingListener remembers every accepted connection until it is closed.
type trackingListener struct {
	net.Listener
	loops *sync.WaitGroup
	loop  loopToken
	wrap  func(net.Conn) net.Conn // the interception beneath pion's framer

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newTrackingListener(l net.Listener, loops *sync.WaitGroup, wrap func(net.Conn) net.Conn) *trackingListener {
	return &trackingListener{
		Listener: l,
		wrap:     wrap,
		loops:    loops,
		loop:     newLoopToken(loops),
		conns:    make(map[*trackedConn]struct{}),
	}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.loop.ended()
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: l.wrap(c), l: l, loop: newLoopToken(l.loops)}
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
	loop loopToken
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.loop.ended()
	}
	return n, err
}

// Close is called by pion once its loop for this connection has exited (for
// whatever reason), and by closeConns.
func (c *trackedConn) Close() error {
	defer c.loop.ended()
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
