package server_test

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/trace"
)

// uclientRun is a turnutils_uclient running against srv's transport
// listener to a countingEcho peer, one message every 50 ms.
type uclientRun struct {
	echoed <-chan int
	done   chan uclientResult
}

type uclientResult struct {
	out string
	err error
}

// startUclient starts turnutils_uclient with messages to send, bounded by
// a minute, and the extra args; it is killed when the test ends.
func startUclient(t *testing.T, srv *server.Server, transport string, messages int, extra ...string) *uclientRun {
	t.Helper()
	bin := needTool(t, "turnutils_uclient")
	port, echoed := countingEcho(t)
	a := srv.TURNAddr(transport)
	args := append([]string{"-c", "-n", strconv.Itoa(messages), "-z", "50", "-p", strconv.Itoa(int(a.Port())),
		"-e", "127.0.0.1", "-r", strconv.Itoa(port), "-u", "user", "-w", "pass"}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, append(args, a.Addr().String())...)
	r := &uclientRun{echoed: echoed, done: make(chan uclientResult, 1)}
	go func() {
		out, err := cmd.CombinedOutput()
		r.done <- uclientResult{string(out), err}
	}()
	return r
}

// waitEchoes waits until the peer has echoed n of uclient's datagrams.
func (r *uclientRun) waitEchoes(t *testing.T, n int) {
	t.Helper()
	for got := 0; got < n; {
		select {
		case got = <-r.echoed:
		case res := <-r.done:
			t.Fatalf("turnutils_uclient ended before %d echoes: %v\n%s", n, res.err, res.out)
		}
	}
}

// wait returns uclient's output once it has ended, failing the test if it
// ended with an error.
func (r *uclientRun) wait(t *testing.T) string {
	t.Helper()
	res := <-r.done
	if res.err != nil {
		t.Fatalf("turnutils_uclient: %v\n%s", res.err, res.out)
	}
	return res.out
}

// nonces.rotate against coturn's turnutils_uclient over UDP. Rotated
// before it starts, its signed Allocate gets 438 with a fresh NONCE, its
// retry with that nonce succeeds, and it relays every message (0 lost).
// Rotated again mid-run, it notices nothing until it next signs a request:
// uclient refreshes every 30 s, so in a shorter run that is its closing
// Refresh (LIFETIME 0), which gets 438; uclient exits without retrying, so
// its allocation stays until its lifetime runs out.
func TestCoturnUclientNonceRotation(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	srv := startServer(t, nil)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	if n, err := c.RotateNonces(ctx); err != nil || n != 1 {
		t.Fatalf("nonces.rotate = %d, %v; want rotation 1", n, err)
	}
	const messages = 40
	run := startUclient(t, srv, "udp", messages)
	run.waitEchoes(t, 10)
	if n, err := c.RotateNonces(ctx); err != nil || n != 2 {
		t.Fatalf("nonces.rotate mid-run = %d, %v; want rotation 2", n, err)
	}
	out := run.wait(t)
	checkUclient(t, out, messages)

	// uclient exits right after sending its closing Refresh: wait for it.
	refreshes := waitRecords(t, srv, "Refreshes answered 438", 1, func(r trace.Record) bool {
		return r.Dir == faults.In && r.Method == faults.MethodRefresh && r.Decision.Code == 438
	})
	// uclient allocates twice (a probe it leaves, then the client that
	// relays): each 5-tuple's first signed Allocate gets 438, its retry
	// passes to pion.
	allocates := map[netip.AddrPort][]int{}
	stale := 0
	for _, r := range srv.TraceSince(0, 0).Messages {
		if r.Dir == faults.In && r.Method == faults.MethodAllocate && r.Class == faults.ClassRequest && r.Username != "" {
			allocates[r.Client] = append(allocates[r.Client], r.Decision.Code)
		}
		if r.Decision.Code == 438 {
			stale++
		}
	}
	for client, codes := range allocates {
		if !slices.Equal(codes, []int{438, 0}) {
			t.Errorf("%s's signed Allocates were answered %v, want [438 0]: a 438, then the retry passed to pion", client, codes)
		}
	}
	if len(allocates) == 0 || stale != len(allocates)+1 || len(refreshes) != 1 {
		t.Errorf("%d requests answered 438, want one per signed Allocate (%d) and the closing Refresh; uclient printed:\n%s",
			stale, len(allocates), out)
	}
	left := false
	for _, a := range srv.Allocations() {
		left = left || a.Client == refreshes[0].Client
	}
	if !left {
		t.Errorf("after uclient's exit its allocation %s is gone; want it left by its closing Refresh's 438", refreshes[0].Client)
	}
}

// connections.close against coturn's turnutils_uclient over TCP, mid-run:
// its allocation leaves the list; uclient's sends after the close fail
// (it counts them, and its closing Refresh, as "send dropped", not as
// sent), it gets no more echoes, and it still exits 0 once its wait for
// them runs out (about 10 s after its last send).
func TestCoturnUclientConnectionClosed(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	srv := startServer(t, nil)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	const messages, before = 20, 10
	run := startUclient(t, srv, "tcp", messages, "-t")
	run.waitEchoes(t, before)
	list := srv.Allocations()
	if len(list) != 1 || list[0].Transport != "tcp" {
		t.Fatalf("allocations mid-run: %+v, want uclient's tcp one", list)
	}
	if err := c.CloseConnection(ctx, list[0].Client.String()); err != nil {
		t.Fatalf("connections.close %s: %v", list[0].Client, err)
	}
	waitAllocations(t, srv, "no allocations", func(l []control.Allocation) bool { return len(l) == 0 })
	out := run.wait(t)
	tot := regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`).FindAllStringSubmatch(out, -1)
	lost := regexp.MustCompile(`Total lost packets (\d+) .*total send dropped (\d+)`).FindStringSubmatch(out)
	if len(tot) == 0 || lost == nil {
		t.Fatalf("no totals in turnutils_uclient's output:\n%s", out)
	}
	sent, _ := strconv.Atoi(tot[len(tot)-1][1])
	recv, _ := strconv.Atoi(tot[len(tot)-1][2])
	dropped, _ := strconv.Atoi(lost[2])
	// What was in flight when the connection closed may go either way. The
	// failed sends are the messages not sent and the closing Refresh.
	if sent+dropped != messages+1 || dropped == 0 || recv < before-1 || recv > sent || lost[1] != strconv.Itoa(sent-recv) {
		t.Errorf("uclient sent %d, send dropped %d, received %d, lost %s; want %d sent or dropped (and the Refresh), some dropped, about %d received:\n%s",
			sent, dropped, recv, lost[1], messages, before, out)
	}
}
