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

func (g *udpGuard) ReadFrom(p []byte) (int, net.Addr, error) {
	var backoff time.Duration
	for {
		n, addr, err := g.PacketConn.ReadFrom(p)
		if err == nil {
			return n, addr, nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return n, addr, err
		}
		select {
		case <-g.closing:
			return n, addr, err
		default:
		}
		if !temporaryNetError(err) {
			g.err = err
			close(g.failed) // the read loop ends: ReadFrom is not called again
			g.log.Error("listener failed; it reads no more messages", "err", err)
			return n, addr, err
		}
		backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
		g.log.Warn("read failed; retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-g.closing:
			t.Stop()
			return 0, nil, net.ErrClosed
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
