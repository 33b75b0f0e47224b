package server

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// TestUDPBatchEdges puts eight Binding requests in a real UDP socket before
// its packetConn reads, so the first batched read takes all eight, and has a
// rule fire on one near a batch edge. A stand-in for pion's read loop reads
// and answers them. What pion reads and what the client gets, in order, is
// what it was with one datagram per system call: a fault's reply comes after
// the answers before it, a delay that fires during the batch is read before
// the rest of the batch, and no answer is left queued when the reader
// blocks.
func TestUDPBatchEdges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched UDP I/O is Linux only")
	}
	t.Parallel()
	const n = 8
	marked := func(i int) faults.Match {
		return faults.Match{Attributes: []faults.AttributeMatch{{Type: "software", Contains: "#" + string(rune('0'+i))}}}
	}
	tests := []struct {
		name     string
		rule     faults.Rule
		advance  int      // after pion has read this many, the clock moves on 20ms (0: never)
		wantRead []string // what pion reads
		wantGot  []string // what the client gets: "i" an answer, "i!" an injected error
	}{
		{
			name:     "error on the last",
			rule:     faults.Rule{Match: marked(7), Action: faults.Action{Type: "error", Code: 403}},
			wantRead: []string{"0", "1", "2", "3", "4", "5", "6"},
			wantGot:  []string{"0", "1", "2", "3", "4", "5", "6", "7!"},
		},
		{
			name:     "drop the last",
			rule:     faults.Rule{Match: marked(7), Action: faults.Action{Type: "drop"}},
			wantRead: []string{"0", "1", "2", "3", "4", "5", "6"},
			wantGot:  []string{"0", "1", "2", "3", "4", "5", "6"},
		},
		{
			name:     "duplicate the last",
			rule:     faults.Rule{Match: marked(7), Action: faults.Action{Type: "duplicate", Copies: 1}},
			wantRead: []string{"0", "1", "2", "3", "4", "5", "6", "7", "7"},
			wantGot:  []string{"0", "1", "2", "3", "4", "5", "6", "7", "7"},
		},
		{
			name:     "error in the middle",
			rule:     faults.Rule{Match: marked(3), Action: faults.Action{Type: "error", Code: 403}},
			wantRead: []string{"0", "1", "2", "4", "5", "6", "7"},
			wantGot:  []string{"0", "1", "2", "3!", "4", "5", "6", "7"},
		},
		{
			// Every reply waits in the answer queue; pion reads nothing,
			// so they go out before the reader blocks.
			name:     "error on every one",
			rule:     faults.Rule{Match: faults.Match{Attributes: []faults.AttributeMatch{{Type: "software", Contains: "#"}}}, Action: faults.Action{Type: "error", Code: 403}},
			wantRead: nil,
			wantGot:  []string{"0!", "1!", "2!", "3!", "4!", "5!", "6!", "7!"},
		},
		{
			name:     "a delay fires during the batch",
			rule:     faults.Rule{Match: marked(0), Action: faults.Action{Type: "delay", Delay: faults.Duration(20 * time.Millisecond)}},
			advance:  3,
			wantRead: []string{"1", "2", "3", "0", "4", "5", "6", "7"},
			wantGot:  []string{"1", "2", "3", "0", "4", "5", "6", "7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := faults.NewManualClock(time.Unix(1e9, 0))
			tt.rule.ID = "edge"
			ic := newInterceptor(t, clock, tt.rule)
			sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			g := newUDPGuard(sock, Listener{Transport: "udp"}, slog.New(slog.DiscardHandler))
			var loops sync.WaitGroup
			pc := newPacketConn(g, ic, &loops)
			if pc.batch == nil {
				t.Fatal("no batched I/O on a *net.UDPConn on Linux")
			}
			cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			ids := map[[stun.TransactionIDSize]byte]string{}
			for i := range n {
				m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("#"+string(rune('0'+i))))
				ids[m.TransactionID] = string(rune('0' + i))
				if _, err := cli.WriteTo(m.Raw, sock.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}

			// pion's read loop, answering each request.
			reads := make(chan string, 2*n)
			done := make(chan struct{})
			step := make(chan struct{})
			first := 0 // datagrams in the first batch
			go func() {
				defer close(done)
				buf := make([]byte, inboundMTU)
				for k := 0; ; k++ {
					if tt.advance > 0 && k == tt.advance {
						<-step // the test moves the clock on
					}
					nr, addr, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					req := &stun.Message{Raw: slices.Clone(buf[:nr])}
					if err := req.Decode(); err != nil {
						t.Errorf("pion read a bad message: %v", err)
						return
					}
					if k == 0 {
						first = pc.batch.have
					}
					reads <- ids[req.TransactionID]
					resp := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess)
					if _, err := pc.WriteTo(resp.Raw, addr); err != nil {
						t.Errorf("WriteTo: %v", err)
					}
				}
			}()
			if tt.advance > 0 {
				for range tt.advance {
					<-reads // the answers stay queued: more of the batch is due
				}
				clock.Advance(20 * time.Millisecond)
				close(step)
			}

			var got []string
			_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 1500)
			for len(got) < len(tt.wantGot) {
				nr, err := cli.Read(buf)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				m := &stun.Message{Raw: slices.Clone(buf[:nr])}
				if err := m.Decode(); err != nil {
					t.Fatal(err)
				}
				s := ids[m.TransactionID]
				if m.Type.Class == stun.ClassErrorResponse {
					s += "!"
				}
				got = append(got, s)
			}
			_ = pc.Close()
			<-done
			close(reads)
			if first != n {
				t.Logf("the first batch held %d datagrams, not %d: the loopback did not queue them all before the read", first, n)
			}
			var read []string
			if tt.advance > 0 {
				read = append(read, tt.wantRead[:tt.advance]...)
			}
			for r := range reads {
				read = append(read, r)
			}
			if !slices.Equal(read, tt.wantRead) {
				t.Errorf("pion read %v, want %v", read, tt.wantRead)
			}
			if !slices.Equal(got, tt.wantGot) {
				t.Errorf("client got %v, want %v", got, tt.wantGot)
			}
		})
	}
}

// TestUDPBatchAddresses sends Bindings through the batched I/O of IPv4,
// IPv6 and dual-stack sockets and checks what pion sees as the sender (the
// client's address, IPv4 unmapped, the same *net.UDPAddr for each datagram
// of one client) and that the answers written to it arrive, one at a time
// and queued in a batch.
func TestUDPBatchAddresses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("batched UDP I/O is Linux only")
	}
	t.Parallel()
	tests := []struct {
		name            string
		network, listen string
		client          string // the client socket's network and IP
		clientNet       string
	}{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1", "udp4"},
		{"ipv6", "udp6", "[::1]:0", "::1", "udp6"},
		{"ipv4 client on a dual-stack socket", "udp", "[::]:0", "127.0.0.1", "udp4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sock, err := net.ListenPacket(tt.network, tt.listen)
			if err != nil {
				t.Skipf("cannot listen on %s %s: %v", tt.network, tt.listen, err)
			}
			ic := newInterceptor(t, faults.NewManualClock(time.Unix(1e9, 0)))
			var loops sync.WaitGroup
			pc := newPacketConn(newUDPGuard(sock, Listener{Transport: "udp"}, slog.New(slog.DiscardHandler)), ic, &loops)
			defer pc.Close()
			if pc.batch == nil {
				t.Fatal("no batched I/O on a *net.UDPConn on Linux")
			}
			cli, err := net.ListenUDP(tt.clientNet, &net.UDPAddr{IP: net.ParseIP(tt.client)})
			if err != nil {
				t.Skipf("no %s client socket: %v", tt.client, err)
			}
			defer cli.Close()
			to := netip.AddrPortFrom(netip.MustParseAddr(tt.client), uint16(sock.LocalAddr().(*net.UDPAddr).Port))
			want := cli.LocalAddr().(*net.UDPAddr).AddrPort()
			_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf, cbuf := make([]byte, inboundMTU), make([]byte, 1500)
			var first net.Addr
			// One at a time, then four in one batch.
			for _, burst := range []int{1, 1, 4} {
				sent := map[[stun.TransactionIDSize]byte]bool{}
				for range burst {
					m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
					sent[m.TransactionID] = true
					if _, err := cli.WriteToUDPAddrPort(m.Raw, to); err != nil {
						t.Fatal(err)
					}
				}
				for range burst {
					n, addr, err := pc.ReadFrom(buf)
					if err != nil {
						t.Fatal(err)
					}
					ua, ok := addr.(*net.UDPAddr)
					if !ok || ua.AddrPort() != want || len(ua.IP) != want.Addr().BitLen()/8 {
						t.Fatalf("pion sees the sender as %#v, want %v", addr, want)
					}
					if first == nil {
						first = addr
					} else if addr != first {
						t.Errorf("a new *net.UDPAddr for the same client: %p, then %p", first, addr)
					}
					req := &stun.Message{Raw: slices.Clone(buf[:n])}
					if err := req.Decode(); err != nil {
						t.Fatal(err)
					}
					resp := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess)
					if _, err := pc.WriteTo(resp.Raw, addr); err != nil {
						t.Fatalf("WriteTo %v: %v", addr, err)
					}
				}
				for range burst {
					n, from, err := cli.ReadFromUDPAddrPort(cbuf)
					if err != nil {
						t.Fatalf("waiting for the answers: %v", err)
					}
					m := &stun.Message{Raw: slices.Clone(cbuf[:n])}
					if err := m.Decode(); err != nil || !sent[m.TransactionID] || m.Type != stun.BindingSuccess {
						t.Fatalf("the client got %v (%v), not an answer to its Bindings", m, err)
					}
					if from.Port() != to.Port() {
						t.Errorf("an answer from %v, want port %d", from, to.Port())
					}
					delete(sent, m.TransactionID)
				}
			}
		})
	}
}
