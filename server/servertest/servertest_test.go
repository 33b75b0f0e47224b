package servertest_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// cleanup New registers must release the whole server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// binding performs one Binding over transport to addr with a 10 ms RTO and
// returns the error code of the answer (0 for a success) and the
// XOR-MAPPED-ADDRESS of a success.
//
// The client retransmits over TCP too, so a slow run may get two answers
// back to back; pion's stun.Client decodes whatever one Read returns as one
// message, so over TCP it reads through pion's STUN framer (stunStream), as
// the server package's tests do.
func binding(t *testing.T, transport string, addr netip.AddrPort) (code int, mapped netip.AddrPort, err error) {
	t.Helper()
	nc, err := net.Dial(transport, addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var conn stun.Connection = nc
	if transport == "tcp" {
		conn = stunStream{turn.NewSTUNConn(nc)}
	}
	c, err := stun.NewClient(conn, stun.WithRTO(10*time.Millisecond))
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	doErr := c.Do(req, func(e stun.Event) {
		if e.Error != nil {
			err = e.Error
			return
		}
		if e.Message.Type.Class == stun.ClassErrorResponse {
			var ec stun.ErrorCodeAttribute
			if ec.GetFrom(e.Message) == nil {
				code = int(ec.Code)
			}
			return
		}
		var xor stun.XORMappedAddress
		if err = xor.GetFrom(e.Message); err == nil {
			ip, _ := netip.AddrFromSlice(xor.IP)
			mapped = netip.AddrPortFrom(ip.Unmap(), uint16(xor.Port)) //nolint:gosec // a port
		}
	})
	if doErr != nil {
		return 0, netip.AddrPort{}, doErr
	}
	return code, mapped, err
}

// stunStream is a TCP connection framed by STUN and ChannelData lengths
// (pion's turn.STUNConn) as the stun.Connection of a stun.Client: one Read
// returns one whole message.
type stunStream struct{ *turn.STUNConn }

func (s stunStream) Read(p []byte) (int, error) {
	n, _, err := s.ReadFrom(p)
	return n, err
}

func (s stunStream) Write(p []byte) (int, error) { return s.WriteTo(p, nil) }

// Parallel tests each get their own server on their own free port, UDP and
// TCP on the same one, and leave nothing behind (goleak in TestMain). Each
// udp listener has 2 to 4 read loops (SO_REUSEPORT sockets): none joins
// another server's.
func TestParallelServersDoNotCollide(t *testing.T) {
	t.Parallel()
	const n = 8
	var (
		mu    sync.Mutex
		ports = map[uint16]string{}
	)
	t.Run("group", func(t *testing.T) {
		for i := range n {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				cfg := config.Default()
				cfg.Server.ReadLoops = 2 + i%3
				srv := servertest.New(t, servertest.WithConfig(cfg))
				for _, l := range srv.Listeners() {
					if l.Transport == "udp" && l.ReadLoops != cfg.Server.ReadLoops {
						t.Errorf("udp listener %s has %d read loops, want %d", l.Addr, l.ReadLoops, cfg.Server.ReadLoops)
					}
				}
				udp, tcp := srv.TURNAddr("udp"), srv.TURNAddr("tcp")
				if udp != tcp || !udp.Addr().IsLoopback() || udp.Port() == 0 {
					t.Errorf("udp %s, tcp %s: want one loopback port for both", udp, tcp)
				}
				if srv.STUNAddr() != udp {
					t.Errorf("STUNAddr %s, want the udp listener %s", srv.STUNAddr(), udp)
				}
				// Each test's rule is on its own server only.
				srv.AddRule(t, faults.Rule{
					ID:     "mine",
					Match:  faults.Match{Methods: []string{"binding"}},
					Action: faults.Action{Type: "error", Code: 400 + i},
				})
				for _, transport := range []string{"udp", "tcp"} {
					code, _, err := binding(t, transport, udp)
					if err != nil || code != 400+i {
						t.Errorf("%s Binding: got code %d, %v; want %d", transport, code, err, 400+i)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if other, ok := ports[udp.Port()]; ok {
					t.Errorf("port %d is also %s's", udp.Port(), other)
				}
				ports[udp.Port()] = t.Name()
			})
		}
	})
	if len(ports) != n {
		t.Errorf("%d distinct ports for %d servers", len(ports), n)
	}
}

// ICEServers has a stun: URL and turn: URLs over UDP and TCP with
// credentials the server accepts: pion's TURN client allocates with them.
func TestICEServersAllocate(t *testing.T) {
	t.Parallel()
	srv := servertest.New(t)
	ice := srv.ICEServers()
	if len(ice) != 2 {
		t.Fatalf("ICEServers = %+v, want a stun and a turn entry", ice)
	}
	udp := srv.TURNAddr("udp").String()
	want := []string{"stun:" + udp}
	if got := ice[0].URLs; len(got) != 1 || got[0] != want[0] {
		t.Errorf("stun URLs %v, want %v", got, want)
	}
	wantTURN := []string{"turn:" + udp + "?transport=udp", "turn:" + udp + "?transport=tcp"}
	if got := ice[1].URLs; strings.Join(got, " ") != strings.Join(wantTURN, " ") {
		t.Errorf("turn URLs %v, want %v", got, wantTURN)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: udp,
		TURNServerAddr: udp,
		Username:       ice[1].Username,
		Password:       ice[1].Credential,
		Realm:          srv.Config().Server.Realm,
		Conn:           conn,
		RTO:            20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate with the ICEServers credentials: %v", err)
	}
	_ = relay.Close()
	if srv.ControlURL() == "" || !strings.HasPrefix(srv.ControlURL(), "ws://127.0.0.1:") {
		t.Errorf("ControlURL %q", srv.ControlURL())
	}
}

// A rule a subtest adds is gone once the subtest is over, while one the
// parent added stays for the parent's whole test.
func TestAddRuleLastsForItsTest(t *testing.T) {
	t.Parallel()
	srv := servertest.New(t)
	srv.AddRule(t, faults.Rule{ID: "parent", Match: faults.Match{Methods: []string{"refresh"}}, Action: faults.Action{Type: "drop"}})
	var generated string
	t.Run("sub", func(t *testing.T) {
		r := srv.AddRule(t, faults.Rule{
			Match:  faults.Match{Methods: []string{"binding"}},
			Action: faults.Action{Type: "error", Code: 403},
		})
		generated = r.ID
		if generated == "" {
			t.Fatal("AddRule returned no ID for a rule without one")
		}
		if code, _, err := binding(t, "udp", srv.STUNAddr()); err != nil || code != 403 {
			t.Errorf("Binding in the subtest: code %d, %v; want 403", code, err)
		}
		// A rule removed by hand before the cleanup is no error.
		gone := srv.AddRule(t, faults.Rule{ID: "gone", Action: faults.Action{Type: "pass"}, Match: faults.Match{Methods: []string{"send"}}})
		if _, err := srv.Faults().Remove(gone.ID); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := srv.Faults().Get(generated); err == nil {
		t.Errorf("rule %q is still there after its subtest", generated)
	}
	if _, err := srv.Faults().Get("parent"); err != nil {
		t.Errorf("the parent's rule: %v", err)
	}
	if code, _, err := binding(t, "udp", srv.STUNAddr()); err != nil || code != 0 {
		t.Errorf("Binding after the subtest: code %d, %v; want a success", code, err)
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: generated}); n < 1 {
		t.Errorf("the journal forgot the subtest's firing: %d entries", n)
	}
}

// WithConfig keeps a config's rules, listener transports and hosts, and
// moves every address to port 0.
func TestWithConfigMovesAddressesToFreePorts(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`
[[listen]]
transport = "udp"
address = "127.0.0.1:3478"

[[users]]                  # a listener off loopback may not use the built-in user
name = "alice"
password = "wonderland"

[http]
address = "127.0.0.1:8478"

[[rules]]
id = "nat"
match = { methods = ["binding"], classes = ["success"], direction = "out" }
action = { type = "mapped_address", address = "203.0.113.7:40000" }
`), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := servertest.New(t, servertest.WithConfig(cfg))
	ls := srv.Listeners()
	if len(ls) != 1 || ls[0].Transport != "udp" || ls[0].Addr.Addr() != netip.MustParseAddr("127.0.0.1") || ls[0].Addr.Port() == 3478 {
		t.Errorf("listeners %+v, want one udp listener on a free 127.0.0.1 port", ls)
	}
	if a := srv.HTTPAddr(); a.Port() == 8478 || !a.Addr().IsLoopback() {
		t.Errorf("HTTP on %s, want a free loopback port", a)
	}
	_, mapped, err := binding(t, "udp", srv.STUNAddr())
	if err != nil || mapped.String() != "203.0.113.7:40000" {
		t.Errorf("Binding: mapped %s, %v; want the config's rule to rewrite it", mapped, err)
	}
	if srv.TURNAddr("tcp").IsValid() {
		t.Error("a tcp listener the config does not have")
	}
}

// WithConfig takes a Config built in Go, and server.WithSeed through
// WithServerOptions overrides its seed.
func TestWithConfigAndSeed(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Users = []config.User{{Name: "alice", Password: "secret"}}
	cfg.Server.Seed = 1
	srv := servertest.New(t, servertest.WithConfig(cfg), servertest.WithServerOptions(server.WithSeed(42)))
	if u, p, ok := srv.Credentials(); !ok || u != "alice" || p != "secret" {
		t.Errorf("Credentials %q %q %v, want alice's", u, p, ok)
	}
	if srv.Seed() != 42 {
		t.Errorf("seed %d, want 42", srv.Seed())
	}
	if a := srv.TURNAddr("tcp"); a != srv.STUNAddr() {
		t.Errorf("tcp %s and udp %s: want one port", a, srv.STUNAddr())
	}
}

// WithLogs logs to the test while the server runs; a real testing.T panics
// when logged to after it finished, so -race runs of this test would show a
// late line.
func TestWithLogsLogsToTheTest(t *testing.T) {
	t.Parallel()
	ft := newFakeTB()
	srv := servertest.New(ft, servertest.WithLogs())
	if _, _, err := binding(t, "udp", srv.STUNAddr()); err != nil {
		t.Fatal(err)
	}
	ft.finish()
	if ft.failed() {
		t.Fatalf("failed: %v", ft.errors)
	}
	logs := ft.logLines()
	if !strings.Contains(strings.Join(logs, "\n"), "listening") {
		t.Errorf("no listening line in the test's log: %q", logs)
	}
	// After the cleanup nothing reaches the test: fakeTB.Logf panics
	// when called after finish, as testing.T does.
	_ = srv.Close()
	if _, _, err := binding(t, "udp", srv.STUNAddr()); err == nil {
		t.Error("the server still answers after its test's cleanup")
	}
}

// WithLogs with a real test, traffic and a rule: the race detector and
// testing.T's own check on late logging watch it.
func TestWithLogsRealTest(t *testing.T) {
	t.Parallel()
	srv := servertest.New(t, servertest.WithLogs())
	srv.AddRule(t, faults.Rule{ID: "drop-first", Times: 1, Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}})
	for _, transport := range []string{"udp", "tcp"} {
		if _, _, err := binding(t, transport, srv.STUNAddr()); err != nil {
			t.Errorf("%s Binding: %v", transport, err)
		}
	}
}

// New fails the test (through Fatalf, not a panic) on a config the server
// rejects, naming the key.
func TestNewBadConfigFailsTheTest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(*config.Config)
		want   string
	}{
		{"invalid", func(c *config.Config) { c.Relay.MinPort = 0 }, "relay.min_port"},
		{"rule", func(c *config.Config) {
			c.Rules = []faults.Rule{{Match: faults.Match{Methods: []string{"bindng"}}, Action: faults.Action{Type: "drop"}}}
		}, `unknown method "bindng"`},
		{"transport", func(c *config.Config) {
			c.Listen = []config.Listener{{Transport: "sctp", Address: "127.0.0.1:3478"}}
		}, "sctp"},
		{"no port", func(c *config.Config) { c.HTTP.Address = "127.0.0.1" }, "http.address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			c.change(&cfg)
			ft := newFakeTB()
			if srv := servertest.New(ft, servertest.WithConfig(cfg)); srv != nil {
				t.Error("New returned a server for a bad config")
			}
			ft.finish()
			if len(ft.fatals) != 1 || !strings.Contains(ft.fatals[0], c.want) {
				t.Errorf("Fatalf calls %q, want one containing %q", ft.fatals, c.want)
			}
		})
	}
}

// AddRule fails the test on a rule the engine rejects, and adds nothing.
func TestAddRuleBadRuleFailsTheTest(t *testing.T) {
	t.Parallel()
	srv := servertest.New(t)
	ft := newFakeTB()
	srv.AddRule(ft, faults.Rule{ID: "typo", Match: faults.Match{Methods: []string{"bindng"}}, Action: faults.Action{Type: "drop"}})
	ft.finish()
	if len(ft.fatals) != 1 || !strings.Contains(ft.fatals[0], "match.methods[0]") {
		t.Errorf("Fatalf calls %q, want one naming match.methods[0]", ft.fatals)
	}
	if rules := srv.Faults().List(); len(rules) != 0 {
		t.Errorf("rules %+v after a rejected AddRule", rules)
	}
}

// fakeTB is a testing.TB that records Fatalf, Errorf and Logf, runs its
// cleanups on finish, and panics on Logf after finish as testing.T does.
// Fatalf does not stop the goroutine: servertest returns right after it.
type fakeTB struct {
	testing.TB // nil: calling anything not overridden panics
	mu         sync.Mutex
	fatals     []string
	errors     []string
	logs       []string
	cleanups   []func()
	done       bool
}

func newFakeTB() *fakeTB { return &fakeTB{} }

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		panic("Log in goroutine after test has completed: " + fmt.Sprintf(format, args...))
	}
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// finish runs the cleanups, last registered first, and marks the test done.
func (f *fakeTB) finish() {
	f.mu.Lock()
	cs := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
}

func (f *fakeTB) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fatals)+len(f.errors) > 0
}

func (f *fakeTB) logLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.logs...)
}
