package server

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// A 401 or 438 that stunfault injects must carry a NONCE that pion accepts
// on the client's retry, and pion's nonces are HMACs under a key it keeps
// private. So stunfault asks pion for one: pion serves an extra in-memory
// PacketConn (nonceConn), never seen by clients or rules, and an unsigned
// Allocate written into it comes back as pion's own 401 with a fresh NONCE.
// pion's nonces live an hour; stunfault reuses one for nonceReuse.

const (
	nonceReuse   = 10 * time.Minute
	nonceTimeout = 2 * time.Second
)

var errNoNonce = errors.New("server: pion issued no nonce")

// nonceSource hands out recent pion nonces. Safe for concurrent use.
type nonceSource struct {
	conn *nonceConn

	mu    sync.Mutex
	nonce string
	at    time.Time
}

// get returns a pion nonce no older than nonceReuse, asking pion for a new
// one when needed.
func (ns *nonceSource) get() (string, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.nonce != "" && time.Since(ns.at) < nonceReuse {
		return ns.nonce, nil
	}
	n, err := ns.conn.ask()
	if err != nil {
		return "", err
	}
	ns.nonce, ns.at = n, time.Now()
	return n, nil
}

// nonceConn is an in-memory net.PacketConn served by pion. Only ask (one at
// a time, under nonceSource's mutex) writes into it.
type nonceConn struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	close  func()
}

func newNonceConn() *nonceConn {
	c := &nonceConn{in: make(chan []byte), out: make(chan []byte, 1), closed: make(chan struct{})}
	c.close = sync.OnceFunc(func() { close(c.closed) })
	return c
}

var nonceAddr = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

// ask sends pion an unsigned Allocate and returns the NONCE of its 401.
func (c *nonceConn) ask() (string, error) {
	req, err := stun.Build(stun.TransactionID,
		stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
		stun.Fingerprint)
	if err != nil {
		return "", fmt.Errorf("server: building nonce request: %w", err)
	}
	timeout := time.NewTimer(nonceTimeout)
	defer timeout.Stop()
	select {
	case c.in <- req.Raw:
	case <-c.closed:
		return "", net.ErrClosed
	case <-timeout.C:
		return "", errNoNonce
	}
	for {
		select {
		case raw := <-c.out:
			m := &stun.Message{Raw: raw}
			if m.Decode() != nil || m.TransactionID != req.TransactionID {
				continue
			}
			var n stun.Nonce
			if err := n.GetFrom(m); err != nil {
				return "", fmt.Errorf("%w: %s without NONCE", errNoNonce, m.Type)
			}
			return n.String(), nil
		case <-c.closed:
			return "", net.ErrClosed
		case <-timeout.C:
			return "", errNoNonce
		}
	}
}

func (c *nonceConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), nonceAddr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *nonceConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case c.out <- append([]byte(nil), p...):
	default: // nobody asked: drop
	}
	return len(p), nil
}

func (c *nonceConn) Close() error                     { c.close(); return nil }
func (c *nonceConn) LocalAddr() net.Addr              { return nonceAddr }
func (c *nonceConn) SetDeadline(time.Time) error      { return nil }
func (c *nonceConn) SetReadDeadline(time.Time) error  { return nil }
func (c *nonceConn) SetWriteDeadline(time.Time) error { return nil }
