package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// turnClient opens a client socket to l.Target and a pion TURN client on it.
// close releases both.
func turnClient(ctx context.Context, l *STUN) (c *turn.Client, closeAll func(), err error) {
	var conn net.PacketConn
	switch l.Transport {
	case "udp":
		local := "127.0.0.1:0"
		if ap, _ := netip.ParseAddrPort(l.Target); ap.Addr().Is6() {
			local = "[::1]:0"
		}
		if ap, _ := netip.ParseAddrPort(l.Target); !ap.Addr().IsLoopback() {
			local = ":0"
		}
		conn, err = net.ListenPacket("udp", local)
	case "tcp":
		var d net.Dialer
		var tc net.Conn
		tc, err = d.DialContext(ctx, "tcp", l.Target)
		if err == nil {
			conn = turn.NewSTUNConn(tc)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: opening a %s socket to %s: %w", l.Transport, l.Target, err)
	}
	c, err = turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: l.Target,
		TURNServerAddr: l.Target,
		Username:       l.Username,
		Password:       l.Password,
		Realm:          l.Realm,
		Conn:           conn,
		RTO:            l.Timeout / 8,
	})
	if err == nil {
		err = c.Listen()
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("loadgen: TURN client to %s: %w", l.Target, err)
	}
	return c, func() { c.Close(); _ = conn.Close() }, nil
}

// countTURNError counts what a failed TURN transaction got: an error code,
// a loss (no answer in time), or an invalid answer.
func countTURNError(t *tally, err error) {
	var te *stun.TurnError
	switch {
	case errors.As(err, &te):
		t.errors[int(te.ErrorCodeAttr.Code)]++
		t.answered++
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		t.lost++
	default:
		t.invalidf("%v", err)
	}
}

// isTimeout reports whether err is a timeout (pion's client errors have
// Timeout but not all of net.Error).
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout() || errors.Is(err, stun.ErrTransactionTimeOut)
}

// runAllocate runs whole Allocate cycles, each from a fresh socket (a new
// client, as far as the server can tell): the unsigned Allocate and its
// 401, the signed Allocate, and the Refresh with lifetime 0 that ends it.
func runAllocate(ctx context.Context, l *STUN, b *budget, t *tally) error {
	for ctx.Err() == nil && b.take() {
		c, closeAll, err := turnClient(ctx, l)
		if err != nil {
			return err
		}
		t.sent++
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, l.Timeout)
		relay, err := c.AllocateWithContext(actx)
		cancel()
		if err != nil {
			countTURNError(t, err)
		} else {
			t.answer(time.Since(start))
			if _, ok := relay.LocalAddr().(*net.UDPAddr); !ok {
				t.invalidf("allocation without a relayed UDP address: %v", relay.LocalAddr())
			}
			_ = relay.Close() // Refresh with lifetime 0
		}
		closeAll()
	}
	return nil
}

// runChannelData keeps l.Window datagrams in flight through one allocation
// to the echo peer l.Peer, each carrying its sequence number, and checks
// that every echo comes back whole.
func runChannelData(ctx context.Context, l *STUN, b *budget, t *tally) error {
	c, closeAll, err := turnClient(ctx, l)
	if err != nil {
		return err
	}
	defer closeAll()
	relay, err := c.Allocate()
	if err != nil {
		return fmt.Errorf("loadgen: allocating on %s: %w", l.Target, err)
	}
	defer func() { _ = relay.Close() }()
	peer, err := net.ResolveUDPAddr("udp", l.Peer) // an IP literal: no lookup
	if err != nil {
		return fmt.Errorf("loadgen: peer %q: %w", l.Peer, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = relay.SetReadDeadline(time.Now()) })
	defer stop()

	pending := make(map[uint64]time.Time, l.Window)
	var order []uint64
	var next uint64
	out := make([]byte, l.Size)
	in := make([]byte, 2048)
	for {
		for ctx.Err() == nil && len(pending) < l.Window && b.take() {
			binary.BigEndian.PutUint64(out, next)
			for i := 8; i < len(out); i++ {
				out[i] = byte(next) + byte(i)
			}
			pending[next] = time.Now()
			order = append(order, next)
			next++
			t.sent++
			if _, err := relay.WriteTo(out, peer); err != nil {
				return fmt.Errorf("loadgen: sending through the relay: %w", err)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		for len(order) > 0 {
			if _, ok := pending[order[0]]; ok {
				break
			}
			order = order[1:]
		}
		oldest := pending[order[0]]
		if err := relay.SetReadDeadline(oldest.Add(l.Timeout)); err != nil {
			return err
		}
		n, _, err := relay.ReadFrom(in)
		if err != nil {
			if isTimeout(err) {
				now := time.Now()
				for len(order) > 0 {
					at, ok := pending[order[0]]
					if ok && now.Sub(at) < l.Timeout {
						break
					}
					if ok {
						delete(pending, order[0])
						t.lost++
					}
					order = order[1:]
				}
				continue
			}
			t.lost += len(pending)
			return fmt.Errorf("loadgen: reading from the relay: %w", err)
		}
		if n != l.Size {
			t.invalidf("echo of %d bytes, want %d", n, l.Size)
			continue
		}
		seq := binary.BigEndian.Uint64(in)
		sent, ok := pending[seq]
		if !ok {
			continue // late or duplicated
		}
		delete(pending, seq)
		whole := true
		for i := 8; i < n; i++ {
			if in[i] != byte(seq)+byte(i) {
				whole = false
				break
			}
		}
		if !whole {
			t.invalidf("echo of datagram %d differs from what was sent", seq)
			continue
		}
		t.answer(time.Since(sent))
	}
}

// startEcho runs a UDP echo peer on the loopback address of target's family.
func startEcho(target string) (net.PacketConn, error) {
	local := "127.0.0.1:0"
	if ap, err := netip.ParseAddrPort(target); err == nil && ap.Addr().Is6() {
		local = "[::1]:0"
	}
	pc, err := net.ListenPacket("udp", local)
	if err != nil {
		return nil, fmt.Errorf("loadgen: starting an echo peer: %w", err)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			_, _ = pc.WriteTo(buf[:n], addr)
		}
	}()
	return pc, nil
}
