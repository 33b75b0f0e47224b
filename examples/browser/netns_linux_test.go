//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// A test host of the test's own: a private network namespace joined to the
// root namespace by a veth pair on a /30 of 10.231.0.0/16 the test picks at
// random (so parallel runs coexist). The root side of the pair gets the
// /30's first address, the namespace the second. Nothing is routed beyond
// the pair: traffic to the namespace's address stays on this machine, and
// the namespace has no route anywhere else.
type netnsHost struct {
	// Name is the namespace's name ("sf-" and random hex).
	Name string
	// HostAddr is the root side's address, NSAddr the namespace's; Prefix
	// is their /30.
	HostAddr, NSAddr netip.Addr
	Prefix           netip.Prefix
	// External, when set before startServer, is the namespace server's
	// [relay].external_address: what its relay candidates carry.
	External string
}

// ipTimeout bounds one ip(8) command.
const ipTimeout = 10 * time.Second

// runIP runs ip(8) with args, bounded by ipTimeout.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// outputIP runs ip(8) with args and returns its standard output.
func outputIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	if err != nil {
		return "", fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// skipOrFail skips the test with msg, or fails it when CI=true: CI runs
// as root with iproute2 installed, where the test must run.
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newNetnsHost creates the namespace and its veth pair, and removes them
// when the test ends. It skips the test unless it runs as root with ip(8)
// (iproute2) on the PATH; with CI=true a missing ip(8), or a namespace
// that cannot be created, fails it.
func newNetnsHost(t *testing.T) *netnsHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: skipping the test that needs a network namespace of its own (run as root on Linux)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ip (iproute2) not found on PATH: CI must install it (add iproute2 to the apt-get line in .ci/run)")
		}
		t.Skip("ip (iproute2) not found on PATH: skipping the test that needs a network namespace of its own")
	}

	prefix, err := freeTestPrefix()
	if err != nil {
		skipOrFail(t, err.Error())
	}
	id := fmt.Sprintf("%08x", rand.Uint32())
	h := &netnsHost{
		Name:     "sf-" + id,
		HostAddr: prefix.Addr().Next(),
		NSAddr:   prefix.Addr().Next().Next(),
		Prefix:   prefix,
	}
	hostIf, nsIf := "sf"+id+"h", "sf"+id+"n" // at most 15 characters

	if err := runIP("netns", "add", h.Name); err != nil {
		skipOrFail(t, "cannot create a network namespace: "+err.Error())
	}
	t.Cleanup(func() {
		// Deleting the namespace destroys its end of the pair, and with it
		// the root side; the link del covers a namespace still held open.
		if err := runIP("netns", "del", h.Name); err != nil {
			t.Errorf("removing the test's network namespace: %v", err)
		}
		_ = runIP("link", "del", hostIf)
	})
	if err := runIP("link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", h.Name); err != nil {
		t.Fatalf("setting up the test's network namespace: %v", err)
	}
	// No IPv6 link-local addresses on the pair (best effort: the kernel may
	// have IPv6 off), so the browser sees only the IPv4 test address there.
	for _, args := range [][]string{
		{"link", "set", "dev", hostIf, "addrgenmode", "none"},
		{"netns", "exec", h.Name, "ip", "link", "set", "dev", nsIf, "addrgenmode", "none"},
	} {
		if err := runIP(args...); err != nil {
			t.Logf("(ignored) %v", err)
		}
	}
	for _, args := range [][]string{
		{"addr", "add", netip.PrefixFrom(h.HostAddr, prefix.Bits()).String(), "dev", hostIf},
		{"link", "set", "dev", hostIf, "up"},
		{"netns", "exec", h.Name, "ip", "addr", "add", netip.PrefixFrom(h.NSAddr, prefix.Bits()).String(), "dev", nsIf},
		{"netns", "exec", h.Name, "ip", "link", "set", "dev", "lo", "up"},
		{"netns", "exec", h.Name, "ip", "link", "set", "dev", nsIf, "up"},
	} {
		if err := runIP(args...); err != nil {
			t.Fatalf("setting up the test's network namespace: %v", err)
		}
	}
	t.Logf("network namespace %s: %s (root side %s) -- %s (inside %s)", h.Name, h.HostAddr, hostIf, h.NSAddr, nsIf)
	return h
}

// freeTestPrefix picks a random /30 in 10.231.0.0/16 that no address and no
// route of the machine (other than the default route) overlaps.
func freeTestPrefix() (netip.Prefix, error) {
	for range 8 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 231, byte(rand.IntN(256)), byte(4 * rand.IntN(64))}), 30)
		addrs, err := outputIP("-4", "-o", "addr", "show", "to", p.String())
		if err != nil {
			return netip.Prefix{}, err
		}
		routes, err := outputIP("-4", "route", "show", "table", "all", "match", p.String())
		if err != nil {
			return netip.Prefix{}, err
		}
		var used []string
		for line := range strings.Lines(routes) {
			if f := strings.Fields(line); len(f) > 0 && f[0] != "default" {
				used = append(used, line)
			}
		}
		if strings.TrimSpace(addrs) == "" && len(used) == 0 {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 in 10.231.0.0/16 after 8 tries")
}

// netnsServerEnv, when set in the environment of the test binary, makes it
// run a stunfault (configured by the variable's JSON value, a
// netnsServerConfig) instead of the tests: see netnsServerMain.
const netnsServerEnv = "STUNFAULT_NETNS_SERVER"

// netnsServerConfig is what the child stunfault is started with.
type netnsServerConfig struct {
	// Host is the address it listens on (UDP and TCP, free ports) and
	// relays from.
	Host string `json:"host"`
	// MinPort and MaxPort are its relay port range.
	MinPort int `json:"min_port"`
	MaxPort int `json:"max_port"`
	// AllowPeers are its relay.allow_peers.
	AllowPeers []string `json:"allow_peers"`
	// External is its relay.external_address ("" = none).
	External string `json:"external,omitempty"`
	// Rules are added before it serves; their journal counts are printed
	// when it stops.
	Rules []faults.Rule `json:"rules"`
}

// netnsServer is a stunfault running in a netnsHost: the test binary
// itself, run by "ip netns exec" with netnsServerEnv set.
type netnsServer struct {
	// UDPAddr and TCPAddr are its STUN/TURN listeners.
	UDPAddr, TCPAddr netip.AddrPort

	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string
	exited  chan error
	logPath string
	counts  map[string]int
	stopped bool
}

// startServer runs a stunfault in the namespace, listening on h.NSAddr,
// relaying from h.NSAddr in minPort-maxPort, with rules, and stops it when
// the test ends (or at stop).
func (h *netnsHost) startServer(t *testing.T, minPort, maxPort int, rules ...faults.Rule) *netnsServer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(netnsServerConfig{
		Host:       h.NSAddr.String(),
		MinPort:    minPort,
		MaxPort:    maxPort,
		AllowPeers: []string{h.Prefix.String()},
		External:   h.External,
		Rules:      rules,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &netnsServer{
		lines:   make(chan string, 16),
		exited:  make(chan error, 1),
		logPath: filepath.Join(t.TempDir(), "netns-stunfault.log"),
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	s.cmd = exec.Command("ip", "netns", "exec", h.Name, exe, "-test.run=^$")
	s.cmd.Env = append(os.Environ(), netnsServerEnv+"="+string(cfg))
	s.cmd.Stderr = logFile
	stdin, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.stdin = stdin
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start the namespace's stunfault: %v", err)
	}
	// The reader ends at EOF, when the child exits; Wait comes after it
	// (StdoutPipe's rule).
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		s.exited <- s.cmd.Wait()
	}()
	t.Cleanup(func() { s.stop(t) })

	select {
	case line, ok := <-s.lines:
		var udp, tcp string
		if !ok {
			t.Fatalf("the namespace's stunfault exited before it was ready; its log:\n%s", logTail(s.logPath))
		}
		if _, err := fmt.Sscanf(line, "ready %s %s", &udp, &tcp); err != nil {
			t.Fatalf("the namespace's stunfault said %q, want \"ready UDP TCP\"", line)
		}
		if s.UDPAddr, err = netip.ParseAddrPort(udp); err != nil {
			t.Fatal(err)
		}
		if s.TCPAddr, err = netip.ParseAddrPort(tcp); err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the namespace's stunfault was not ready within 15s; its log:\n%s", logTail(s.logPath))
	}
	t.Logf("stunfault in %s on %s (udp), %s (tcp)", h.Name, s.UDPAddr, s.TCPAddr)
	return s
}

// stop closes the child's standard input, which stops it, and returns the
// journal count of each of its rules, by ID. It kills the child when it
// does not stop within 10 s. Later calls return the same counts.
func (s *netnsServer) stop(t *testing.T) map[string]int {
	t.Helper()
	if s.stopped {
		return s.counts
	}
	s.stopped = true
	_ = s.stdin.Close()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.lines = nil
				continue
			}
			if rest, found := strings.CutPrefix(line, "counts "); found {
				if err := json.Unmarshal([]byte(rest), &s.counts); err != nil {
					t.Errorf("the namespace's stunfault: counts %q: %v", rest, err)
				}
			}
		case err := <-s.exited:
			if err != nil {
				t.Errorf("the namespace's stunfault: %v; its log:\n%s", err, logTail(s.logPath))
			}
			if s.counts == nil {
				t.Errorf("the namespace's stunfault printed no counts; its log:\n%s", logTail(s.logPath))
			}
			return s.counts
		case <-timeout:
			t.Errorf("the namespace's stunfault did not stop within 10s: killing it")
			_ = s.cmd.Process.Kill()
			timeout = nil
		}
	}
}

// runNetnsServerIfAsked runs the namespace's stunfault and exits when the
// test binary was started for that (netnsServerEnv set); otherwise it
// returns.
func runNetnsServerIfAsked() {
	v, ok := os.LookupEnv(netnsServerEnv)
	if !ok {
		return
	}
	if err := netnsServerMain(v); err != nil {
		fmt.Fprintln(os.Stderr, "netns stunfault:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// netnsServerMain starts a stunfault from the JSON netnsServerConfig v,
// prints "ready UDPADDR TCPADDR", serves until its standard input closes,
// then prints "counts {RULE: N, ...}" (each rule's journal count) and stops.
// It logs to standard error.
func netnsServerMain(v string) error {
	var nc netnsServerConfig
	if err := json.Unmarshal([]byte(v), &nc); err != nil {
		return fmt.Errorf("%s: %w", netnsServerEnv, err)
	}
	cfg := config.Default()
	cfg.Listen = []config.Listener{{Transport: "udp", Address: nc.Host + ":0"}, {Transport: "tcp", Address: nc.Host + ":0"}}
	cfg.HTTP.Address = "127.0.0.1:0" // the namespace's own loopback
	cfg.Relay.Address = nc.Host
	cfg.Relay.MinPort, cfg.Relay.MaxPort = nc.MinPort, nc.MaxPort
	cfg.Relay.AllowPeers = nc.AllowPeers
	cfg.Relay.ExternalAddress = nc.External
	// Off loopback the built-in user/pass is refused: the namespace's
	// server and the first one share a credential of their own.
	cfg.Users = []config.User{netnsUser}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(cfg, server.WithLogger(log))
	if err != nil {
		return err
	}
	for _, r := range nc.Rules {
		if _, err := srv.Faults().Add(r); err != nil {
			_ = srv.Close()
			return fmt.Errorf("add rule %s: %w", r.ID, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = srv.Start(ctx)
	cancel()
	if err != nil {
		_ = srv.Close()
		return err
	}
	tcp := srv.TURNAddr("tcp")
	fmt.Printf("ready %s %s\n", srv.STUNAddr(), tcp)

	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes it

	counts := map[string]int{}
	for _, r := range nc.Rules {
		counts[r.ID] = srv.Faults().Journal().Count(faults.Query{Rule: r.ID})
	}
	data, err := json.Marshal(counts)
	if err != nil {
		_ = srv.Close()
		return err
	}
	fmt.Printf("counts %s\n", data)
	return srv.Close()
}
