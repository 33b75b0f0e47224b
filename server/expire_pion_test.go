package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/trace"
)

// logLines is an io.Writer keeping what a pion logger wrote, line by line.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(string(bytes.TrimRight(p, "\n")), "\n") {
		l.lines = append(l.lines, line)
	}
	return len(p), nil
}

// containing returns the lines written so far that contain s.
func (l *logLines) containing(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// waitRecords waits, on the trace, until at least n messages satisfy ok,
// for at most waitTimeout, and returns them.
func waitRecords(t *testing.T, srv *server.Server, what string, n int, ok func(trace.Record) bool) []trace.Record {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		changed := srv.Trace().Changed()
		var got []trace.Record
		for _, r := range srv.TraceSince(0, 0).Messages {
			if ok(r) {
				got = append(got, r)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("waiting for %d %s in the trace: %d so far", n, what, len(got))
		}
	}
}

// "The allocation expires mid-call, the client refreshes and gets 437, and
// reallocates", played by a pion TURN client over UDP and TCP. With
// [relay].allocation_lifetime = 2s pion's own refresh timer (lifetime / 2)
// sends a Refresh every second, so the test drives no Refresh itself: it
// waits, on the trace, for the ones pion sends.
//
// What pion v5.1.3 reports: nothing for the Refresh (its refreshAllocation
// returns nil for any error response but 438, so it neither logs a warning
// nor stops its timer), a *stun.TurnError 437 from CreatePermission. Its
// relayed conn stays open; closing it and calling Allocate again on the
// same client (the same 5-tuple) gets a new relay that carries data.
func TestPionClientReallocatesAfterExpiry(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Relay.AllocationLifetime = faults.Duration(2 * time.Second)
			srv := startServer(t, &cfg)
			c := dialControl(t, srv.ControlURL())
			ctx := context.Background()

			logs := &logLines{}
			lf := logging.NewDefaultLoggerFactory()
			lf.Writer, lf.DefaultLogLevel = logs, logging.LogLevelDebug
			addr := turnAddr(t, srv, transport)
			pc, err := turn.NewClient(&turn.ClientConfig{
				STUNServerAddr: addr, TURNServerAddr: addr, Username: "user", Password: "pass",
				Realm: srv.Config().Server.Realm, Conn: dialClientConn(t, srv, transport),
				RTO: 100 * time.Millisecond, LoggerFactory: lf,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := pc.Listen(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pc.Close)

			peer := listenPeer(t, "127.0.0.1")
			relay, err := pc.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			relayed := func(relay net.PacketConn, what string) {
				t.Helper()
				if err := pc.CreatePermission(peer.LocalAddr()); err != nil {
					t.Fatalf("%s: CreatePermission: %v", what, err)
				}
				if _, err := relay.WriteTo([]byte("to "+what), peer.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				recvFrom(t, peer, "to "+what, relay.LocalAddr())
				if _, err := peer.WriteTo([]byte("from "+what), relay.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				recvFrom(t, relay, "from "+what, peer.LocalAddr())
			}
			relayed(relay, "first relay")
			list := srv.Allocations()
			if len(list) != 1 {
				t.Fatalf("allocations: %+v, want 1", list)
			}
			client := list[0].Client

			// pion's timer keeps the allocation: its Refreshes succeed.
			refreshes := func(code int) func(trace.Record) bool {
				return func(r trace.Record) bool {
					return r.Dir == faults.In && r.Method == faults.MethodRefresh && r.Client == client &&
						r.Transport.String() == transport && int(r.Decision.Code) == code
				}
			}
			waitRecords(t, srv, "Refresh successes from pion's timer", 1, refreshes(0))

			gone, err := c.ExpireAllocations(ctx, control.AllocationSelector{Client: client.String()})
			if err != nil || len(gone) != 1 {
				t.Fatalf("allocations.expire = %+v, %v; want the pion client's", gone, err)
			}
			// Two Refreshes answered 437: the timer ran its handler for the
			// first to the end (it runs them one after another) and sent
			// another, the allocation's refresh still scheduled.
			waitRecords(t, srv, "Refreshes from pion's timer answered 437", 2, refreshes(437))
			if w := logs.containing("Failed to refresh allocation"); len(w) != 0 {
				t.Errorf("pion logged %q: the README says it reports nothing for a 437 on Refresh", w)
			}
			var te *stun.TurnError
			if err := pc.CreatePermission(peer.LocalAddr()); !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeAllocMismatch {
				t.Fatalf("CreatePermission after the expiry: %v, want a *stun.TurnError 437", err)
			}

			// The client reallocates on the same socket.
			if err := relay.Close(); err != nil {
				t.Fatalf("closing the expired relay: %v", err)
			}
			again, err := pc.Allocate()
			if err != nil {
				t.Fatalf("Allocate after the expiry: %v, want a new relay", err)
			}
			defer again.Close()
			relayed(again, "second relay")
			if l := srv.Allocations(); len(l) != 1 || l[0].Client != client || l[0].Relay.String() != again.LocalAddr().String() {
				t.Errorf("after reallocating: %+v, want one allocation of %s on relay %s", l, client, again.LocalAddr())
			}
		})
	}
}

// nonces.rotate against a pion TURN client: its next signed request, a
// CreatePermission, gets 438 with a fresh NONCE. pion v5.1.3 takes the
// nonce and returns "try again" from Client.CreatePermission without
// retrying; the caller's retry, signed with the new nonce, succeeds, and
// so do the client's requests after it (pion's refresh timer's Refresh).
func TestPionClientAfterNonceRotation(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Relay.AllocationLifetime = faults.Duration(2 * time.Second) // pion refreshes every second
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	pc := newTURNClient(t, srv, "udp", "user", "pass")
	relay, err := pc.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer := listenPeer(t, "127.0.0.1")
	if n, err := c.RotateNonces(context.Background()); err != nil || n != 1 {
		t.Fatalf("nonces.rotate = %d, %v; want rotation 1", n, err)
	}
	// pion's timer may sign a Refresh first: then that one gets the 438
	// (pion retries a Refresh's 438 itself) and CreatePermission passes.
	first := pc.CreatePermission(peer.LocalAddr())
	if first != nil && first.Error() != "try again" {
		t.Fatalf("first CreatePermission after the rotation: %v, want pion's \"try again\" for a 438", first)
	}
	if first != nil {
		if err := pc.CreatePermission(peer.LocalAddr()); err != nil {
			t.Fatalf("CreatePermission retried with the fresh nonce: %v, want success", err)
		}
	}
	client := srv.Allocations()[0].Client
	stale := waitRecords(t, srv, "signed requests answered 438", 1, func(r trace.Record) bool {
		return r.Dir == faults.In && r.Client == client && r.Decision.Code == 438
	})
	if first == nil && stale[0].Method != faults.MethodRefresh {
		t.Errorf("CreatePermission passed, but the 438 went to a %v, want pion's Refresh", stale[0].Method)
	}
	// pion's next Refreshes, on its timer, are signed with the new nonce.
	waitRecords(t, srv, "Refresh successes after the 438", 1, func(r trace.Record) bool {
		return r.Dir == faults.In && r.Client == client && r.Method == faults.MethodRefresh && r.Seq > stale[0].Seq && r.Decision.Code == 0
	})
	if _, err := relay.WriteTo([]byte("after rotation"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	recvFrom(t, peer, "after rotation", relay.LocalAddr())
	if n := len(waitRecords(t, srv, "438s", 1, func(r trace.Record) bool { return r.Decision.Code == 438 })); n != 1 {
		t.Errorf("%d requests answered 438, want 1: only the first signed request after the rotation", n)
	}
}

// connections.close against a pion TURN client over TCP and TLS: the
// allocation leaves the list; the client's next transaction fails at its
// first retransmission ("failed to retransmit transaction": the write into
// the closed connection fails), and its relayed conn's writes fail with
// the connection's error (broken pipe, or reset).
func TestPionClientConnectionClosed(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			cfg := tlsConfig()
			srv := startServer(t, &cfg)
			c := dialControl(t, srv.ControlURL())
			var pc *turn.Client
			if transport == "tcp" {
				pc = newTURNClient(t, srv, "tcp", "user", "pass")
			} else {
				addr := tlsListener(t, srv).Addr.String()
				var err error
				pc, err = turn.NewClient(&turn.ClientConfig{
					STUNServerAddr: addr, TURNServerAddr: addr, Username: "user", Password: "pass",
					Realm: srv.Config().Server.Realm, Conn: turn.NewSTUNConn(dialTLS(t, srv)), RTO: 100 * time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := pc.Listen(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pc.Close)
			}
			relay, err := pc.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			list := srv.Allocations()
			if len(list) != 1 {
				t.Fatalf("allocations: %+v, want 1", list)
			}
			if err := c.CloseConnection(context.Background(), list[0].Client.String()); err != nil {
				t.Fatal(err)
			}
			waitAllocations(t, srv, "no allocations", func(l []control.Allocation) bool { return len(l) == 0 })
			peer := listenPeer(t, "127.0.0.1")
			var te *stun.TurnError
			err = pc.CreatePermission(peer.LocalAddr())
			if err == nil || errors.As(err, &te) {
				t.Fatalf("CreatePermission after connections.close: %v, want a transaction failure", err)
			}
			if _, err := relay.WriteTo([]byte("after close"), peer.LocalAddr()); !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("relayed write after connections.close: %v, want broken pipe or connection reset", err)
			}
		})
	}
}

// channels.expire against a pion TURN client: pion reports nothing. Its
// data to the peer, still sent as ChannelData on the number it bound, is
// dropped (pion binds again only on a write 5 minutes after binding, an
// interval its ClientConfig cannot shorten), while the peer's data reaches
// it as Data indications, which its relayed conn reads as before.
func TestPionClientAfterChannelExpiry(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			c := dialControl(t, srv.ControlURL())
			_, relay, lost, marker := relayToTwoPeers(t, srv, transport)
			send := func(to net.PacketConn, what string) {
				t.Helper()
				if _, err := relay.WriteTo([]byte(what), to.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			send(lost, "bind lost")
			recvFrom(t, lost, "bind lost", relay.LocalAddr())
			send(marker, "bind marker")
			recvFrom(t, marker, "bind marker", relay.LocalAddr())
			waitAllocations(t, srv, "two channels", func(l []control.Allocation) bool { return len(l) == 1 && len(l[0].Channels) == 2 })
			// The peers' data comes after the ChannelBind successes on the
			// same socket: once it is read, pion has had them.
			for _, p := range []net.PacketConn{lost, marker} {
				if _, err := p.WriteTo([]byte("bound"), relay.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				recvFrom(t, relay, "bound", p.LocalAddr())
			}
			channels, ok := relay.(interface {
				FindChannelNumberByAddr(net.Addr) (uint16, bool)
				IsChannelActive(uint16) bool
			})
			if !ok {
				t.Fatalf("pion's relayed conn is a %T, without its channel methods", relay)
			}
			number, ok := channels.FindChannelNumberByAddr(lost.LocalAddr())
			if !ok || !channels.IsChannelActive(number) {
				t.Fatalf("pion's channel to %s: %#x, active %v; want it bound", lost.LocalAddr(), number, ok && channels.IsChannelActive(number))
			}
			got, err := c.ExpireChannels(context.Background(), control.ChannelSelector{
				AllocationSelector: control.AllocationSelector{Username: "user"}, Channel: number})
			if err != nil || len(got) != 1 {
				t.Fatalf("channels.expire %#x = %+v, %v; want the lost peer's channel", number, got, err)
			}

			send(lost, "after expiry")
			send(marker, "marker")
			recvFrom(t, marker, "marker", relay.LocalAddr())
			nothingMore(t, lost)
			if _, err := lost.WriteTo([]byte("from lost"), relay.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			recvFrom(t, relay, "from lost", lost.LocalAddr())
			if !channels.IsChannelActive(number) {
				t.Errorf("pion marked channel %#x inactive; the README says it notices nothing", number)
			}
		})
	}
}
