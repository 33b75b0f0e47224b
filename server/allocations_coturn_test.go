package server_test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
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
			port, echoed := countingEcho(t)
			const messages, before = 40, 10
			a := srv.TURNAddr(transport)
			args := []string{"-c", "-n", strconv.Itoa(messages), "-z", "50", "-p", strconv.Itoa(int(a.Port())),
				"-e", "127.0.0.1", "-r", strconv.Itoa(port), "-u", "user", "-w", "pass"}
			if transport == "tcp" {
				args = append(args, "-t")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, needTool(t, "turnutils_uclient"), append(args, a.Addr().String())...)
			type result struct {
				out []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := cmd.CombinedOutput()
				done <- result{out, err}
			}()
			for n := 0; n < before; {
				select {
				case n = <-echoed:
				case r := <-done:
					t.Fatalf("turnutils_uclient ended before %d echoes: %v\n%s", before, r.err, r.out)
				}
			}
			gone, err := srv.ExpireAllocations(ctx, control.AllocationSelector{All: true})
			if err != nil || len(gone) == 0 {
				t.Fatalf("expire all: %+v, %v", gone, err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("turnutils_uclient: %v\n%s", r.err, r.out)
			}
			out := string(r.out)
			tot := regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`).FindAllStringSubmatch(out, -1)
			lost := regexp.MustCompile(`Total lost packets (\d+)`).FindStringSubmatch(out)
			if len(tot) == 0 || lost == nil {
				t.Fatalf("no totals in turnutils_uclient's output:\n%s", out)
			}
			sent, _ := strconv.Atoi(tot[len(tot)-1][1])
			recv, _ := strconv.Atoi(tot[len(tot)-1][2])
			// What was in flight while the expiry ran (the peer's last echo on
			// its way back, the datagrams uclient sent meanwhile, one per
			// 50 ms) may go either way.
			if sent != messages || recv < before-1 || recv > before+3 || lost[1] != strconv.Itoa(sent-recv) {
				t.Errorf("uclient sent %d, received %d, lost %s; want %d sent, about %d received, the rest lost:\n%s",
					sent, recv, lost[1], messages, before, out)
			}
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
