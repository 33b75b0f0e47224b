package control_test

import (
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/server/control"
)

// stallListener hands out connections whose writes can be stalled, as a
// peer that stopped reading stalls them once the socket buffers are full.
type stallListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*stallConn
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &stallConn{Conn: c, closed: make(chan struct{})}
	l.mu.Lock()
	l.conns = append(l.conns, sc)
	l.mu.Unlock()
	return sc, nil
}

// stallAll makes every accepted connection's writes block until their
// deadline or Close, and returns how many there are.
func (l *stallListener) stallAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.stalled.Store(true)
	}
	return len(l.conns)
}

type stallConn struct {
	net.Conn
	mu       sync.Mutex
	stalled  atomic.Bool
	deadline time.Time
	closed   chan struct{}
	once     sync.Once
}

func (c *stallConn) SetDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallConn) SetWriteDeadline(t time.Time) error {
	c.setWrite(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallConn) setWrite(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *stallConn) Write(p []byte) (int, error) {
	if !c.stalled.Load() {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	var expired <-chan time.Time
	if !d.IsZero() {
		t := time.NewTimer(time.Until(d))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// Peers that stopped reading cost Close about a second in total, not a
// second each (20 of them used to make Close take 20 s); the peers that
// still read get their close frame.
func TestCloseWithStalledPeersIsBounded(t *testing.T) {
	h := control.NewHandler(newFakeBackend(), control.HandlerOptions{})
	srv := httptest.NewUnstartedServer(h)
	ln := &stallListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/control"

	const stalled = 20
	for range stalled {
		c, err := control.Dial(ctx(t), wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Hello(ctx(t)); err != nil { // served: the socket is registered
			t.Fatal(err)
		}
	}
	if n := ln.stallAll(); n != stalled {
		t.Fatalf("%d connections accepted, want %d", n, stalled)
	}
	reading := rawDial(t, &testServer{wsURL: wsURL})

	done := make(chan struct{})
	start := time.Now()
	go func() { h.Close(); close(done) }()
	// Close promises about a second; 5 s keeps a loaded machine from
	// failing the test, and is far from the 20 s of one second per peer.
	select {
	case <-done:
		t.Logf("Close with %d stalled peers took %v", stalled, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatalf("Close with %d stalled peers did not return within 5s", stalled)
	}
	_, _, err := reading.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("reading peer: got %v, want close 1001", err)
	}
}
