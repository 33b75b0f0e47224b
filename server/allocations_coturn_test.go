package server_test

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// countingEcho is a UDP echo peer on 127.0.0.1 that says on a channel how
// many datagrams it has echoed. It stops when the test ends.
func countingEcho(t *testing.T) (port int, echoed <-chan int) {
	t.Helper()
	pc := listenPeer(t, "127.0.0.1")
	ch := make(chan int, 1024)
	go func() {
		buf := make([]byte, 2048)
		for n := 1; ; n++ {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				close(ch)
				return
			}
			_, _ = pc.WriteTo(buf[:k], from)
			select {
			case ch <- n:
			default: // nobody counts any more
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).Port, ch
}

// coturn's turnutils_uclient, mid-run, has its allocations expired: the
// echoes stop at what came back before (the rest are lost, as uclient
// reports), and its closing Refresh gets 437 Allocation Mismatch, as from a
// server whose allocation timed out. Over TCP uclient binds channel
// numbers up to 0x7FFF (RFC 5766's range, which pion accepts): stunfault
// frames and faults those as pion reads them.
func TestCoturnUclientAllocationExpiresMidRun(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			srv := startServer(t, nil)
			const messages, before = 40, 10
			var extra []string
			if transport == "tcp" {
				extra = append(extra, "-t")
			}
			run := startUclient(t, srv, transport, messages, extra...)
			run.waitEchoes(t, before)
			gone, err := srv.ExpireAllocations(context.Background(), control.AllocationSelector{All: true})
			if err != nil || len(gone) == 0 {
				t.Fatalf("expire all: %+v, %v", gone, err)
			}
			out := run.wait(t)
			checkLostAfter(t, out, messages, before)
			refused := false
			for _, m := range srv.TraceSince(0, 0).Messages {
				if m.Dir == faults.In && m.Method == faults.MethodRefresh && m.Decision.Code == 437 {
					refused = true
				}
			}
			if !refused {
				t.Errorf("no Refresh answered 437 after the expiry; uclient printed:\n%s", out)
			}
		})
	}
}

// coturn's turnutils_uclient, mid-run, has its permission for the peer, or
// its channel binding, expired: what it sends after that (ChannelData, or
// Send indications with -s) no longer reaches the peer, so the echoes stop
// at what came back before and uclient counts the rest as lost, as from a
// server whose permission or binding timed out while the client did not
// refresh it.
func TestCoturnUclientPermissionOrChannelExpiresMidRun(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	peer := netip.MustParseAddr("127.0.0.1")
	for _, tt := range []struct {
		name   string
		extra  []string
		expire func(*server.Server) (int, error)
	}{
		{"permission, channeldata", nil, func(srv *server.Server) (int, error) {
			gone, err := srv.ExpirePermissions(context.Background(), control.PermissionSelector{AllocationSelector: control.AllocationSelector{All: true}, Peer: peer.String()})
			return len(gone), err
		}},
		{"permission, send", []string{"-s"}, func(srv *server.Server) (int, error) {
			gone, err := srv.ExpirePermissions(context.Background(), control.PermissionSelector{AllocationSelector: control.AllocationSelector{All: true}, Peer: peer.String()})
			return len(gone), err
		}},
		{"channel", nil, func(srv *server.Server) (int, error) {
			n := 0
			for _, a := range srv.Allocations() {
				for _, ch := range a.Channels {
					gone, err := srv.ExpireChannels(context.Background(), control.ChannelSelector{AllocationSelector: control.AllocationSelector{Client: a.Client.String()}, Channel: ch.Number})
					if err != nil {
						return n, err
					}
					n += len(gone)
				}
			}
			return n, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			const messages, before = 40, 10
			run := startUclient(t, srv, "udp", messages, tt.extra...)
			run.waitEchoes(t, before)
			if n, err := tt.expire(srv); err != nil || n == 0 {
				t.Fatalf("expire: %d ended, %v; want at least one", n, err)
			}
			checkLostAfter(t, run.wait(t), messages, before)
		})
	}
}

// checkLostAfter checks uclient's totals: every message sent, about before
// of them echoed (what was in flight when the fault began, the peer's last
// echo on its way back and the datagrams uclient sent meanwhile, one per
// 50 ms, may go either way), and the rest counted lost.
func checkLostAfter(t *testing.T, out string, messages, before int) {
	t.Helper()
	tot := regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`).FindAllStringSubmatch(out, -1)
	lost := regexp.MustCompile(`Total lost packets (\d+)`).FindStringSubmatch(out)
	if len(tot) == 0 || lost == nil {
		t.Fatalf("no totals in turnutils_uclient's output:\n%s", out)
	}
	sent, _ := strconv.Atoi(tot[len(tot)-1][1])
	recv, _ := strconv.Atoi(tot[len(tot)-1][2])
	if sent != messages || recv < before-1 || recv > before+3 || lost[1] != strconv.Itoa(sent-recv) {
		t.Errorf("uclient sent %d, received %d, lost %s; want %d sent, about %d received, the rest lost:\n%s",
			sent, recv, lost[1], messages, before, out)
	}
}
