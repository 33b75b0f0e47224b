package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// tsharkPath returns tshark's path; the test skips without it, and fails
// when CI=true (.ci/run installs it).
func tsharkPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is not installed (CI=true: .ci/run installs it)")
		}
		t.Skip("tshark is not installed: skipping the capture's Wireshark check")
	}
	return p
}

// tsharkFields runs tshark on file and returns, per packet, the fields
// asked for, separated by "|".
func tsharkFields(t *testing.T, tshark, file string, fields ...string) []string {
	t.Helper()
	args := []string{"-r", file, "-T", "fields", "-E", "separator=|", "-o", "tcp.analyze_sequence_numbers:TRUE"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// getCapture saves GET /capture.pcapng?query to a file and returns its path.
func getCapture(t *testing.T, srv *server.Server, query string) string {
	t.Helper()
	res, err := http.Get(srv.HTTPURL() + "/capture.pcapng?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET /capture.pcapng?%s: status %d: %s", query, res.StatusCode, b)
	}
	file := filepath.Join(t.TempDir(), "capture.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// Wireshark reads a capture: it dissects the STUN messages over UDP and
// over TCP (reassembled from the synthetic segments), shows each decision
// in the packet's comment, and shows the 403 stunfault sent.
func TestCaptureWiresharkReads(t *testing.T) {
	tshark := tsharkPath(t)
	cfg := testConfig()
	for _, tr := range []string{"udp", "tcp"} {
		cfg.Rules = append(cfg.Rules, faults.Rule{
			ID: tr + "-403", Times: 1,
			Match:  faults.Match{Methods: []string{"binding"}, Transports: []string{tr}},
			Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
		})
	}
	srv := startServer(t, &cfg)
	for _, tr := range []string{"udp", "tcp"} {
		c := newSTUNClient(t, srv, tr)
		if got := bindingCode(t, c); got != 403 {
			t.Fatalf("%s: first Binding got %d, want 403", tr, got)
		}
		if got := bindingCode(t, c); got != 0 {
			t.Fatalf("%s: second Binding got %d, want a success", tr, got)
		}
	}
	file := getCapture(t, srv, "")
	lines := tsharkFields(t, tshark, file, "frame.protocols", "stun.type", "tcp.analysis.flags", "frame.comment")

	var udpSTUN, tcpSTUN int
	seen := map[string]bool{}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			t.Fatalf("tshark line %q: want 4 fields", l)
		}
		protos, typ, flags, comment := f[0], f[1], f[2], f[3]
		switch {
		case strings.Contains(protos, "udp:stun"):
			udpSTUN++
		case strings.Contains(protos, "tcp:stun"):
			tcpSTUN++
		default:
			t.Errorf("packet %q: not dissected as STUN", l)
		}
		if flags != "" {
			t.Errorf("packet %q: TCP analysis flags %q, want a clean stream", l, flags)
		}
		if comment == "" {
			t.Errorf("packet %q: no comment", l)
		}
		for _, tr := range []string{"udp", "tcp"} {
			rule := fmt.Sprintf("rule %s-403: error 403, journal #", tr)
			if typ == "0x0001" && strings.Contains(comment, rule) && strings.Contains(comment, fmt.Sprintf("seed %d", srv.Seed())) {
				seen[tr+" request"] = true
			}
			if typ == "0x0111" && strings.Contains(comment, "the error response stunfault sent: "+rule) && strings.Contains(protos, tr) {
				seen[tr+" 403"] = true
			}
		}
		if typ == "0x0101" && strings.Contains(comment, "passed") {
			seen[protos[strings.Index(protos, "ip")+3:][:3]+" success"] = true
		}
	}
	if udpSTUN < 4 || tcpSTUN < 4 {
		t.Errorf("STUN packets: %d over UDP, %d over TCP, want at least 4 each (two transactions)", udpSTUN, tcpSTUN)
	}
	for _, want := range []string{"udp request", "udp 403", "tcp request", "tcp 403", "udp success", "tcp success"} {
		if !seen[want] {
			t.Errorf("no %s with its comment in the capture:\n%s", want, strings.Join(lines, "\n"))
		}
	}

	// The journal's query flags filter: only what rule udp-403 fired on,
	// and the response it sent.
	lines = tsharkFields(t, tshark, getCapture(t, srv, "rule=udp-403"), "stun.type", "frame.comment")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "0x0001|") || !strings.HasPrefix(lines[1], "0x0111|") {
		t.Errorf("capture of rule=udp-403: got %q, want its request and the 403", lines)
	}
}

// A live capture (d) writes what is recorded after it starts, and ends at
// its count (n) without waiting for its duration.
func TestCaptureLive(t *testing.T) {
	tshark := tsharkPath(t)
	srv := startServer(t, nil)
	// One request, no retransmission: exactly two messages per Binding.
	conn, err := net.Dial("udp4", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	binding := func() {
		t.Helper()
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if _, err := conn.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(whWait))
		if _, err := conn.Read(make([]byte, 1500)); err != nil {
			t.Fatalf("no answer to the Binding: %v", err)
		}
	}
	binding() // before the capture: not in it
	start := time.Now()
	res, err := http.Get(srv.HTTPURL() + "/capture.pcapng?d=1m&n=2&method=binding")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	// The headers came: the capture follows the trace from here.
	binding()
	file := filepath.Join(t.TempDir(), "live.pcapng")
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the capture took %v: it should end at its count", took)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	lines := tsharkFields(t, tshark, file, "stun.type")
	if len(lines) != 2 || lines[0] != "0x0001" || lines[1] != "0x0101" {
		t.Fatalf("live capture: got %q, want one Binding request and its success", lines)
	}
}

// Bad capture parameters get 400 with what was wrong.
func TestCaptureBadParameters(t *testing.T) {
	srv := startServer(t, nil)
	for _, q := range []string{"d=11m", "d=soon", "n=-1", "method=bindng", "label=x", "client=nowhere"} {
		res, err := http.Get(srv.HTTPURL() + "/capture.pcapng?" + q)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(b), "capture: ") {
			t.Errorf("%s: got %d %q, want 400 saying why", q, res.StatusCode, b)
		}
	}
}

// A live capture does not hold Close up: it ends as Close begins, with a
// valid file.
func TestCaptureLiveEndsOnClose(t *testing.T) {
	srv := startServer(t, nil)
	res, err := http.Get(srv.HTTPURL() + "/capture.pcapng?d=10m")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close gives clients a second (closeGrace) and cuts what is left:
	// the capture must end before that.
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Fatalf("Close took %v with a live capture open, want it ended at once", took)
	}
	b, _ := io.ReadAll(res.Body)
	if len(b) < 12 || b[0] != 0x0A || b[1] != 0x0D {
		t.Fatalf("capture: got %d bytes, want at least the pcapng headers", len(b))
	}
}

// Over IPv6 the frames are IPv6 and Wireshark dissects them the same way.
func TestCaptureIPv6(t *testing.T) {
	tshark := tsharkPath(t)
	cfg := testConfig()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: "[::1]:0"}, {Transport: "tcp", Address: "[::1]:0"}}
	srv := startServer(t, &cfg)
	for _, tr := range []string{"udp", "tcp"} {
		conn, err := net.Dial(tr, srv.TURNAddr(tr).String())
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		c, err := stun.NewClient(conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stunBinding(t, c); err != nil {
			t.Fatalf("%s Binding over ::1: %v", tr, err)
		}
		_ = c.Close()
	}
	lines := tsharkFields(t, tshark, getCapture(t, srv, ""), "ipv6.src", "frame.protocols", "stun.type")
	var udp, tcp int
	for _, l := range lines {
		f := strings.Split(l, "|")
		if f[0] != "::1" {
			t.Errorf("packet %q: want IPv6 from ::1", l)
		}
		switch {
		case strings.Contains(f[1], "ipv6:udp:stun"):
			udp++
		case strings.Contains(f[1], "ipv6:tcp:stun"):
			tcp++
		}
	}
	if udp < 2 || tcp < 2 {
		t.Errorf("STUN over IPv6: %d UDP and %d TCP packets, want a request and an answer each:\n%s", udp, tcp, strings.Join(lines, "\n"))
	}
}
