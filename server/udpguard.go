package server

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// udpGuard is the socket beneath a udp listener's interception (udp.go):
// a read error there ends pion's read loop, so it retries the temporary
// ones (out of buffers or memory) with the accept backoff, and records a
// lasting one, which /healthz reports. Timeouts pass through untouched:
// they are the interception's own wake-ups.
type udpGuard struct {
	net.PacketConn
	lis Listener
	log *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	failed    chan struct{} // closed when a read fails for good
	err       error         // why; set before failed is closed
}

func newUDPGuard(pc net.PacketConn, lis Listener, log *slog.Logger) *udpGuard {
	return &udpGuard{
		PacketConn: pc,
		lis:        lis,
		log:        log.With("listener", lis.Transport+" "+lis.Addr.String()),
		closing:    make(chan struct{}),
		failed:     make(chan struct{}),
	}
}

func (g *udpGuard) ReadFrom(p []byte) (n int, addr net.Addr, err error) {
	err = g.retry(func() error {
		n, addr, err = g.PacketConn.ReadFrom(p)
		return err
	})
	return n, addr, err
}

// retry calls read until it succeeds, times out (the interception's
// wake-up) or fails for good, and returns its last error; it waits out
// temporary errors with the accept backoff. ReadFrom and the batched reads
// (udpbatch.go) share it.
func (g *udpGuard) retry(read func() error) error {
	if err := read(); err != nil {
		return g.failedRead(err, read)
	}
	return nil
}

// failedRead is retry once read has failed with err: out of retry, so that
// a read that succeeds runs through few instructions' worth of cache lines.
func (g *udpGuard) failedRead(err error, read func() error) error {
	var backoff time.Duration
	for ; ; err = read() {
		if err == nil {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		select {
		case <-g.closing:
			return err
		default:
		}
		if !temporaryNetError(err) {
			g.err = err
			close(g.failed) // the read loop ends: ReadFrom is not called again
			g.log.Error("listener failed; it reads no more messages", "err", err)
			return err
		}
		backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
		g.log.Warn("read failed; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-g.closing:
			t.Stop()
			return net.ErrClosed
		}
	}
}

// Close closes the socket; the read error that follows is not a failure.
func (g *udpGuard) Close() error {
	g.closeOnce.Do(func() { close(g.closing) })
	return g.PacketConn.Close()
}

func (g *udpGuard) listener() Listener { return g.lis }

func (g *udpGuard) failure() error {
	select {
	case <-g.failed:
		return g.err
	default:
		return nil
	}
}
