package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// These tests point Debian's Chromium, headless, at stunfault through the
// page this example serves, and assert on the icecandidate and
// icecandidateerror events the page POSTs back. Each case ends on the first
// expected event, not on gathering complete. Chromium gathers from every
// interface (127.0.0.1, and the machine's own addresses: it reaches
// stunfault's loopback sockets from those too), so it may report the same
// error once per interface: the tests assert that the set of events holds
// at least one with the expected url and errorCode.
//
// Without Chromium they skip, unless CI=true, where they fail.

// chromiumFlags are what headless Chromium needs to gather on a machine
// whose only reachable network is loopback.
var chromiumFlags = []string{
	"--headless",
	"--disable-gpu",
	"--no-sandbox", // CI runs as root, where the sandbox refuses to start
	"--disable-quic",
	"--no-first-run",
	// The machine's network is closed: without these Chromium's own
	// connections (updates, sync, field trials) are refused many at a time.
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	// Even so it resolves a few Google host names at start (accounts,
	// clients2, update): answer every name NOTFOUND without a DNS query,
	// so the tests send nothing beyond the machine. The page and the ICE
	// servers are IP literals.
	"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
	// WebRTC: gather on loopback, keep IP addresses in candidates instead
	// of mDNS names, and grant the page's getUserMedia with a fake device
	// (without a media permission Chromium gathers from one wildcard
	// socket).
	"--allow-loopback-in-peer-connection",
	"--disable-features=WebRtcHideLocalIpsWithMdns",
	"--use-fake-ui-for-media-stream",
	"--use-fake-device-for-media-stream",
}

// chromium returns the Chromium binary, or skips the test (fails it when
// CI=true) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("chromium not found (/usr/bin/chromium or on PATH); CI must install it (.ci/run does)")
			}
			t.Skip("chromium not found (/usr/bin/chromium or on PATH): skipping the browser end-to-end test")
		}
	}
	return path
}

// startStunfault starts a stunfault from cfg (config.Default() when nil)
// on free loopback ports, with rules added, and closes it when the test
// ends.
func startStunfault(t *testing.T, cfg *config.Config, rules ...faults.Rule) *server.Server {
	t.Helper()
	c := config.Default()
	if cfg != nil {
		c = *cfg
	}
	srv := servertest.New(t, servertest.WithConfig(c))
	for _, r := range rules {
		if _, err := srv.Faults().Add(r); err != nil {
			t.Fatalf("add rule %s: %v", r.ID, err)
		}
	}
	return srv.Server
}

// events is what the page reported so far, in its own order.
type events []Event

// errorFor reports whether evs hold an icecandidateerror for url with code.
func (evs events) errorFor(url string, code int) bool {
	for _, e := range evs {
		if e.Type == "error" && e.URL == url && e.ErrorCode == code {
			return true
		}
	}
	return false
}

// errors returns the icecandidateerror events.
func (evs events) errors() events {
	var out events
	for _, e := range evs {
		if e.Type == "error" {
			out = append(out, e)
		}
	}
	return out
}

// candidates returns the candidates of type typ whose address and port
// satisfy ok (nil: any).
func (evs events) candidates(typ string, ok func(e Event) bool) events {
	var out events
	for _, e := range evs {
		if e.Type == "candidate" && e.CandidateType == typ && (ok == nil || ok(e)) {
			out = append(out, e)
		}
	}
	return out
}

// browserTimeout bounds one Chromium run that ends on its first expected
// event: Chromium starts in about a second and stunfault answers on
// loopback at once; the rest is slack for a loaded CI machine.
const browserTimeout = 25 * time.Second

// gatherInChromium serves the page for servers, opens it with query (such as
// "?only=stun") in a fresh headless Chromium, and collects the page's events
// until done holds for them (or fails the test after timeout, or on a fatal
// page error). Chromium is killed and waited for before it returns.
func gatherInChromium(t *testing.T, servers []server.ICEServer, query string, timeout time.Duration, done func(events) bool) events {
	t.Helper()
	return gatherInChromiumWith(t, servers, query, timeout, nil, done)
}

// gatherInChromiumWith is gatherInChromium with extra Chromium flags.
func gatherInChromiumWith(t *testing.T, servers []server.ICEServer, query string, timeout time.Duration, extra []string, done func(events) bool) events {
	t.Helper()
	bin := chromium(t)

	ch := make(chan Event, 256)
	stop := make(chan struct{})
	ts := httptest.NewServer(newPage(servers, func(ev Event) {
		select {
		case ch <- ev:
		case <-stop:
		}
	}))
	defer ts.Close()
	defer close(stop) // before ts.Close: no handler stays blocked on ch

	dir := t.TempDir()
	logPath := filepath.Join(dir, "chromium.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()

	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	args := append([]string{"--user-data-dir=" + filepath.Join(dir, "profile")}, chromiumFlags...)
	args = append(args, extra...)
	args = append(args, ts.URL+"/"+query)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcessGroup(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		killProcessGroup(cmd)
		<-exited
	}()

	var evs events
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
			t.Logf("%6dms page: %s", ev.MS, ev)
			if ev.Type == "fatal" {
				t.Fatalf("the page failed: %s", ev.Text)
			}
			if done(evs) {
				t.Logf("done after %v", time.Since(start).Round(time.Millisecond))
				return evs
			}
		case err := <-exited:
			exited <- err // for the deferred wait
			t.Fatalf("chromium exited early (%v); log:\n%s", err, logTail(logPath))
		case <-ctx.Done():
			t.Fatalf("no expected event within %v; events: %d; chromium log:\n%s", timeout, len(evs), logTail(logPath))
		}
	}
}

// logTail returns the last lines of Chromium's log.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// urls returns the stun: URL and the turn: UDP and TCP URLs of srv, as
// ICEServers lists them and the browser reports them.
func urls(t *testing.T, srv *server.Server) (stunURL, turnUDP, turnTCP string) {
	t.Helper()
	a := srv.STUNAddr().String()
	tcp := srv.TURNAddr("tcp")
	if !tcp.IsValid() {
		t.Fatal("no tcp listener")
	}
	return "stun:" + a, "turn:" + a + "?transport=udp", "turn:" + tcp.String() + "?transport=tcp"
}

// logErrors writes the icecandidateerror events seen to the test log: what
// the README's "What clients report" records.
func logErrors(t *testing.T, evs events) {
	t.Helper()
	for _, e := range evs.errors() {
		line := fmt.Sprintf("chromium reported: errorCode %d, errorText %q, url %s, address %q, port %d",
			e.ErrorCode, e.ErrorText, e.URL, e.Address, e.Port)
		t.Log(line)
		report(t, line)
	}
}

// reportMu serialises appends to $STUNFAULT_BROWSER_REPORT.
var reportMu sync.Mutex

// report appends "TestName: line" to the file named by
// $STUNFAULT_BROWSER_REPORT, when set: .ci/run prints it, so the CI log
// shows what Chromium reported without running the tests verbosely.
func report(t *testing.T, line string) {
	path := os.Getenv("STUNFAULT_BROWSER_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("browser report: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s: %s\n", t.Name(), line)
}

var (
	natRule = faults.Rule{
		ID:     "nat",
		Match:  faults.Match{Direction: "out", Methods: []string{"binding"}, Classes: []string{"success"}},
		Action: faults.Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
	}
	binding403Rule = faults.Rule{
		ID:     "binding-403",
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	}
	allocate403Rule = faults.Rule{
		ID:     "allocate-403",
		Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: new(true)},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	}
	bindingDropRule = faults.Rule{
		ID:     "binding-drop",
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "drop"},
	}
)

// With no rules Chromium gathers a relay candidate through each turn: URL,
// over UDP and over TCP.
func TestChromiumRelayWithoutRules(t *testing.T) {
	t.Parallel()
	srv := startStunfault(t, nil)
	_, turnUDP, turnTCP := urls(t, srv)
	fromURL := func(u string) func(Event) bool { return func(e Event) bool { return e.URL == u } }
	evs := gatherInChromium(t, srv.ICEServers(), "", browserTimeout, func(evs events) bool {
		return len(evs.candidates("relay", fromURL(turnUDP))) > 0 && len(evs.candidates("relay", fromURL(turnTCP))) > 0
	})
	for _, c := range evs.candidates("relay", nil) {
		report(t, fmt.Sprintf("chromium gathered: %s from %s", c, c.URL))
		if c.Address != "127.0.0.1" || c.Protocol != "udp" {
			t.Errorf("relay candidate %s, want udp on 127.0.0.1 (stunfault's relay address)", c)
		}
	}
	if errs := evs.errors(); len(errs) > 0 {
		t.Errorf("got errors %v, want none", errs)
	}
}

// A mapped_address rule on Binding successes gives Chromium a srflx
// candidate at that address.
func TestChromiumSrflxFromMappedAddress(t *testing.T) {
	t.Parallel()
	srv := startStunfault(t, nil, natRule)
	stunURL, _, _ := urls(t, srv)
	evs := gatherInChromium(t, srv.ICEServers(), "?only=stun", browserTimeout, func(evs events) bool {
		return len(evs.candidates("srflx", func(e Event) bool { return e.Address == "203.0.113.7" && e.Port == 40000 })) > 0
	})
	for _, c := range evs.candidates("srflx", nil) {
		report(t, fmt.Sprintf("chromium gathered: %s from %s", c, c.URL))
		if c.URL != stunURL {
			t.Errorf("srflx candidate %s, want url %s", c, stunURL)
		}
	}
}

// A 403 to Binding requests shows as an icecandidateerror for the stun: URL
// with errorCode 3: Chromium reports a STUN error's code modulo 100.
func TestChromiumBinding403(t *testing.T) {
	t.Parallel()
	srv := startStunfault(t, nil, binding403Rule)
	stunURL, _, _ := urls(t, srv)
	evs := gatherInChromium(t, srv.ICEServers(), "", browserTimeout, func(evs events) bool {
		return evs.errorFor(stunURL, 3)
	})
	logErrors(t, evs)
	if n := srv.Faults().Journal().Count(faults.Query{Rule: binding403Rule.ID}); n == 0 {
		t.Error("journal: binding-403 never fired")
	}
}

// A 403 to the authenticated Allocate (after the 401 challenge) shows as an
// icecandidateerror for the turn: URL with the full code, over UDP and TCP.
func TestChromiumAllocate403(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startStunfault(t, nil, allocate403Rule)
			_, turnUDP, turnTCP := urls(t, srv)
			url := map[string]string{"udp": turnUDP, "tcp": turnTCP}[transport]
			evs := gatherInChromium(t, srv.ICEServers(), "?only=turn-"+transport, browserTimeout, func(evs events) bool {
				return evs.errorFor(url, 403)
			})
			logErrors(t, evs)
			if n := srv.Faults().Journal().Count(faults.Query{Rule: allocate403Rule.ID, Transport: transport}); n == 0 {
				t.Errorf("journal: allocate-403 never fired over %s", transport)
			}
			if rs := evs.candidates("relay", nil); len(rs) > 0 {
				t.Errorf("got relay candidates %v, want none", rs)
			}
		})
	}
}

// The reference scenario in the browser: with screenpop.toml's payload
// scenario, Chromium's Binding gets 403 while a webhook request carrying
// the ticket ID is held open, and works (srflx from the NAT rule) without.
func TestChromiumScreenpop(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../screenpop/screenpop.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, "screenpop.toml")
	if err != nil {
		t.Fatal(err)
	}
	srv := startStunfault(t, &cfg)
	if _, err := srv.Faults().ActivateScenario("payload"); err != nil {
		t.Fatal(err)
	}
	stunURL, _, _ := urls(t, srv)
	const hook = "servicenow"

	// Without the webhook call: the Binding works, through the NAT rule.
	evs := gatherInChromium(t, srv.ICEServers(), "?only=stun", browserTimeout, func(evs events) bool {
		return len(evs.candidates("srflx", func(e Event) bool { return e.Address == "203.0.113.7" })) > 0
	})
	if errs := evs.errors(); len(errs) > 0 {
		t.Errorf("without the webhook call: got errors %v, want none", errs)
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "payload-403"}); n != 0 {
		t.Errorf("without the webhook call: payload-403 fired %d times, want 0", n)
	}

	// With the ticket call held open by the webhook: 403 on Binding.
	callCtx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		req, err := http.NewRequestWithContext(callCtx, http.MethodPost, srv.HTTPURL()+"/webhook/"+hook, strings.NewReader(ticketPayload))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			t.Errorf("webhook answered %s while it should be held open", res.Status)
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("webhook call: %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	heldCtx, heldCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer heldCancel()
	if err := srv.Webhooks().Wait(heldCtx, func() bool { return srv.Webhooks().Inflight(hook) > 0 }); err != nil {
		t.Fatal("the webhook call was not held open within 5s")
	}
	evs = gatherInChromium(t, srv.ICEServers(), "?only=stun", browserTimeout, func(evs events) bool {
		return evs.errorFor(stunURL, 3)
	})
	logErrors(t, evs)
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "payload-403"}); n == 0 {
		t.Error("with the ticket call held: payload-403 never fired")
	}
	cancel()
	wg.Wait()
	http.DefaultClient.CloseIdleConnections()
}

// ticketPayload is the screen-pop call with the custom attributes that break
// the softphone (examples/screenpop's ticket payload).
const ticketPayload = `{"short_description":"Inbound call from +15551230001","caller_id":"+15551230001",` +
	`"conversation_id":"5f0c2a8e-1d3b-4c9a-9e2f-7a6b1c0d4e31","queue":"Support",` +
	`"custom_attributes":{"ticket_id":"INC0012345","u_category":"billing"}}`

// A 300 with ALTERNATE-SERVER on the first (unauthenticated) Allocate sends
// Chromium to a second stunfault, except on loopback:
//
//   - "loopback refused": with the second server on 127.0.0.1, Chromium
//     refuses the redirect (libwebrtc's TurnPort::SetAlternateServer blocks
//     loopback alternates) and reports errorCode 300; the second server
//     never sees an Allocate.
//   - "followed": the second server runs in a network namespace of the
//     test's own, reached over a veth pair on a private /30 (Linux, as root,
//     with iproute2; see netns_linux_test.go). The redirect, scoped to the
//     Allocate from Chromium's socket on the pair's root side, is followed:
//     Chromium gets its relay candidate from the second server, reported
//     with the first server's url. Traffic goes to 127.0.0.1 and to the
//     namespace's address only.
//
// netnsUser is the TURN credential of the namespace's stunfault (which
// listens off loopback, where the built-in user/pass is refused), and of
// the first server that redirects Chromium to it.
var netnsUser = config.User{Name: "student", Password: "alternate-server-test"}

func TestChromiumAlternateServer(t *testing.T) {
	t.Parallel()
	// The second server relays from its own port range, so its relay
	// candidates are told apart from the first server's.
	const minPort, maxPort = 30000, 30999
	allocated := faults.Rule{
		ID:     "allocated",
		Match:  faults.Match{Direction: "out", Methods: []string{"allocate"}, Classes: []string{"success"}},
		Action: faults.Action{Type: "pass"},
	}
	redirectTo := func(alternate string, sources ...string) faults.Rule {
		return faults.Rule{
			ID:     "try-alternate",
			Times:  1,
			Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: new(false), Sources: sources},
			Action: faults.Action{Type: "error", Code: 300, Reason: "Try Alternate", Alternate: alternate},
		}
	}
	startSecond := func(t *testing.T, host string) *server.Server {
		cfg := config.Default()
		cfg.Listen = []config.Listener{{Transport: "udp", Address: host + ":0"}, {Transport: "tcp", Address: host + ":0"}}
		cfg.Relay.MinPort, cfg.Relay.MaxPort = minPort, maxPort
		return startStunfault(t, &cfg, allocated)
	}

	t.Run("loopback refused", func(t *testing.T) {
		t.Parallel()
		b := startSecond(t, "127.0.0.1")
		a := startStunfault(t, nil, redirectTo(b.STUNAddr().String()))
		_, turnUDP, _ := urls(t, a)
		evs := gatherInChromium(t, a.ICEServers(), "?only=turn-udp", browserTimeout, func(evs events) bool {
			return evs.errorFor(turnUDP, 300)
		})
		logErrors(t, evs)
		if n := b.Faults().Journal().Count(faults.Query{Rule: allocated.ID}); n != 0 {
			t.Errorf("second server: %d Allocate successes, want 0 (Chromium should not follow a loopback redirect)", n)
		}
	})

	t.Run("followed", func(t *testing.T) {
		t.Parallel()
		chromium(t) // skip before building the namespace when there is no browser
		ns := newNetnsHost(t)
		// The namespace's server advertises an external relay address
		// ([relay].external_address, as behind a NAT or in a container)
		// while it binds its relays on the namespace's own address.
		const external = "203.0.113.9"
		ns.External = external
		b := ns.startServer(t, minPort, maxPort, allocated)
		// Only the Allocate Chromium sends from its socket on the root side
		// of the veth pair is redirected: that socket reaches the
		// namespace's address, the loopback one (and those on the machine's
		// own addresses) could not, and get their relay from the first
		// server.
		rule := redirectTo(b.UDPAddr.String(), netip.PrefixFrom(ns.HostAddr, 32).String())
		first := config.Default()
		first.Users = []config.User{netnsUser} // the credential Chromium brings to the second
		a := startStunfault(t, &first, rule)
		_, turnUDP, _ := urls(t, a)
		fromSecond := func(e Event) bool {
			return e.Address == external && e.Port >= minPort && e.Port <= maxPort
		}
		evs := gatherInChromium(t, a.ICEServers(), "?only=turn-udp", browserTimeout, func(evs events) bool {
			return len(evs.candidates("relay", fromSecond)) > 0
		})
		for _, c := range evs.candidates("relay", fromSecond) {
			report(t, fmt.Sprintf("chromium gathered: %s from %s", c, c.URL))
		}
		logErrors(t, evs)
		for _, c := range evs.candidates("relay", nil) {
			if c.URL != turnUDP {
				t.Errorf("relay candidate %s: url %s, want the first server's %s", c, c.URL, turnUDP)
			}
		}
		if n := a.Faults().Journal().Count(faults.Query{Rule: rule.ID}); n != 1 {
			t.Errorf("first server: try-alternate fired %d times, want 1", n)
		}
		counts := b.stop(t)
		if counts[allocated.ID] == 0 {
			t.Errorf("second server: no Allocate success (counts %v)", counts)
		}
		t.Logf("second server: %d Allocate successes", counts[allocated.ID])
	})
}

// SLOW (about 40 s; the only slow case, run in parallel with the others): a
// dropped Binding request surfaces only when Chromium's retransmissions give
// up, as errorCode 701.
func TestChromiumDroppedBindingTimesOut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: the dropped-Binding case takes about 40 s")
	}
	srv := startStunfault(t, nil, bindingDropRule)
	stunURL, _, _ := urls(t, srv)
	start := time.Now()
	evs := gatherInChromium(t, srv.ICEServers(), "?only=stun", 60*time.Second, func(evs events) bool {
		return evs.errorFor(stunURL, 701)
	})
	logErrors(t, evs)
	t.Logf("701 after %v", time.Since(start).Round(time.Second))
	if n := srv.Faults().Journal().Count(faults.Query{Rule: bindingDropRule.ID}); n < 2 {
		t.Errorf("journal: binding-drop fired %d times, want the retransmissions too", n)
	}
}
