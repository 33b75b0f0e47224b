package server

import (
	"net"
	"os"
	"sync"
	"time"
)

// fakePacketConn is an in-memory net.PacketConn: ReadFrom returns what the
// test queues with deliver, WriteTo records what is written, and a read
// deadline in the past wakes a blocked ReadFrom with a timeout, as a UDP
// socket does. Safe for concurrent use.
type fakePacketConn struct {
	in     chan datagram
	closed chan struct{}
	once   sync.Once
	notify chan datagram // when set, gets every datagram written too

	mu       sync.Mutex
	written  []datagram
	deadline time.Time
	wake     chan struct{} // closed when the deadline changes
}

var fakeLocal = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478}

func newFakePacketConn() *fakePacketConn {
	return &fakePacketConn{in: make(chan datagram, 256), closed: make(chan struct{}), wake: make(chan struct{})}
}

// deliver queues b as a datagram from addr.
func (f *fakePacketConn) deliver(b []byte, addr net.Addr) {
	f.in <- datagram{data: append([]byte(nil), b...), addr: addr}
}

func (f *fakePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		f.mu.Lock()
		dl, wake := f.deadline, f.wake
		f.mu.Unlock()
		if !dl.IsZero() && !time.Now().Before(dl) {
			return 0, nil, os.ErrDeadlineExceeded
		}
		select {
		case d := <-f.in:
			return copy(p, d.data), d.addr, nil
		case <-wake:
		case <-f.closed:
			return 0, nil, net.ErrClosed
		}
	}
}

func (f *fakePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case <-f.closed:
		return 0, net.ErrClosed
	default:
	}
	d := datagram{data: append([]byte(nil), p...), addr: addr}
	f.mu.Lock()
	f.written = append(f.written, d)
	f.mu.Unlock()
	if f.notify != nil {
		f.notify <- d
	}
	return len(p), nil
}

func (f *fakePacketConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakePacketConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadline = t
	close(f.wake)
	f.wake = make(chan struct{})
	return nil
}

func (f *fakePacketConn) LocalAddr() net.Addr                { return fakeLocal }
func (f *fakePacketConn) SetDeadline(t time.Time) error      { return f.SetReadDeadline(t) }
func (f *fakePacketConn) SetWriteDeadline(t time.Time) error { return nil }
