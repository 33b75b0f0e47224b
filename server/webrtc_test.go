package server_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/internal/gather"
	"github.com/stunfault/stunfault/server"
)

// These tests gather ICE candidates with a pion/webrtc peer connection (mDNS
// off, loopback only, a 500 ms STUN gather timeout) against a real stunfault,
// as a softphone's browser would. pion/webrtc has no icecandidateerror: a
// fault shows as a missing candidate, and the journal says which rule fired.

// iceLogBuffer collects pion's log lines for the test log.
type iceLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *iceLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *iceLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gatherICE gathers against servers within 10 s and fails the test unless
// gathering completes. pion's warnings (a refused Binding or Allocate) go to
// the test log.
func gatherICE(t *testing.T, servers []server.ICEServer) gather.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var logs iceLogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := gather.Gather(ctx, servers, gather.Options{Logger: log})
	for _, c := range res.Candidates {
		t.Logf("candidate %s (related %s:%d)", c, c.RelatedAddress, c.RelatedPort)
	}
	if s := logs.String(); s != "" {
		t.Logf("pion:\n%s", s)
	}
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if !res.Complete {
		t.Fatal("gathering did not complete")
	}
	return res
}

// turnTCPOnly keeps only the turn:...?transport=tcp URLs of servers.
func turnTCPOnly(t *testing.T, servers []server.ICEServer) []server.ICEServer {
	t.Helper()
	var out []server.ICEServer
	for _, s := range servers {
		var urls []string
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=tcp") {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			s.URLs = urls
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatal("no turn:...?transport=tcp URL among the ICE servers")
	}
	return out
}

func addICERule(t *testing.T, srv *server.Server, r faults.Rule) {
	t.Helper()
	if _, err := srv.Faults().Add(r); err != nil {
		t.Fatalf("add rule %s: %v", r.ID, err)
	}
}

// iceNATRule makes every Binding success carry 203.0.113.7:40000, as
// if the client were behind a NAT.
var iceNATRule = faults.Rule{
	ID:     "nat",
	Match:  faults.Match{Direction: "out", Methods: []string{"binding"}, Classes: []string{"success"}},
	Action: faults.Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
}

// iceBinding403Rule answers Binding requests with 403, before iceNATRule.
var iceBinding403Rule = faults.Rule{
	ID:       "binding-403",
	Priority: -1,
	Match:    faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
	Action:   faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
}

// iceAllocate403Rule answers the authenticated Allocate (the one after the 401
// challenge) with 403, signed, which is what pion's TURN client accepts.
var iceAllocate403Rule = faults.Rule{
	ID:     "allocate-403",
	Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: new(true)},
	Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
}

// checkRelayCandidates fails unless res has a UDP relay candidate on the relay address
// within the relay port range.
func checkRelayCandidates(t *testing.T, srv *server.Server, res gather.Result) {
	t.Helper()
	relay := srv.Config().Relay
	relays := res.ByType("relay")
	if len(relays) == 0 {
		t.Fatal("no relay candidate")
	}
	for _, c := range relays {
		if c.Address != relay.Address || c.Port < relay.MinPort || c.Port > relay.MaxPort || c.Protocol != "udp" {
			t.Errorf("relay candidate %s, want udp %s:%d-%d", c, relay.Address, relay.MinPort, relay.MaxPort)
		}
	}
}

func checkNoCandidate(t *testing.T, res gather.Result, typ string) {
	t.Helper()
	if got := res.ByType(typ); len(got) != 0 {
		t.Errorf("got %s candidates %v, want none", typ, got)
	}
}

func TestWebRTCGatherWithoutRules(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	res := gatherICE(t, srv.ICEServers())

	checkRelayCandidates(t, srv, res)
	hosts := res.ByType("host")
	if len(hosts) == 0 {
		t.Fatal("no host candidate")
	}
	for _, c := range hosts {
		if c.Address != "127.0.0.1" || c.Protocol != "udp" {
			t.Errorf("host candidate %s, want udp on 127.0.0.1", c)
		}
	}
	// pion keeps a srflx candidate whose address is its own base (no NAT on
	// loopback) although RFC 8445 section 5.1.3 calls it redundant: one per
	// STUN-capable UDP URL, the stun: and the turn:?transport=udp one alike.
	srflx := res.ByType("srflx")
	if len(srflx) == 0 {
		t.Error("no srflx candidate: has pion started dropping srflx candidates equal to their base?")
	}
	for _, c := range srflx {
		if c.Address != c.RelatedAddress || c.Port != c.RelatedPort || c.Address != "127.0.0.1" {
			t.Errorf("srflx candidate %s related %s:%d, want its own base on 127.0.0.1", c, c.RelatedAddress, c.RelatedPort)
		}
	}
	if n := srv.Faults().Journal().Len(); n != 0 {
		t.Errorf("journal has %d entries with no rules", n)
	}
}

func TestWebRTCGatherMappedAddressGivesSrflx(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	addICERule(t, srv, iceNATRule)
	res := gatherICE(t, srv.ICEServers())

	srflx := res.ByType("srflx")
	if len(srflx) == 0 {
		t.Fatal("no srflx candidate")
	}
	for _, c := range srflx {
		if c.AddrPort().String() != "203.0.113.7:40000" || c.RelatedAddress != "127.0.0.1" {
			t.Errorf("srflx candidate %s related %s, want 203.0.113.7:40000 based on 127.0.0.1", c, c.RelatedAddress)
		}
	}
	checkRelayCandidates(t, srv, res)
	if n := srv.Faults().Journal().Count(faults.Query{Rule: iceNATRule.ID, Direction: "out"}); n < 1 {
		t.Errorf("journal has %d firings of %s, want at least 1", n, iceNATRule.ID)
	}
}

func TestWebRTCGatherBinding403RemovesSrflx(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	addICERule(t, srv, iceNATRule)
	addICERule(t, srv, iceBinding403Rule)
	res := gatherICE(t, srv.ICEServers())

	checkNoCandidate(t, res, "srflx")
	checkRelayCandidates(t, srv, res) // TURN Allocate is not Binding
	sent := srv.Faults().Journal().Query(faults.Query{Rule: iceBinding403Rule.ID, Method: "binding"})
	if len(sent) < 1 {
		t.Fatalf("journal has no firing of %s", iceBinding403Rule.ID)
	}
	// pion sends a Binding request to the turn: UDP URL as well as to the
	// stun: one, each from its own socket, and gets the 403 on both.
	clients := map[string]bool{}
	for _, e := range sent {
		if e.Code != 403 || e.Direction != "in" || !e.Client.Addr().IsLoopback() {
			t.Errorf("journal entry %+v, want a 403 to a loopback client", e)
		}
		clients[e.Client.String()] = true
	}
	if len(clients) < 2 {
		t.Errorf("the 403 went to %d client sockets, want one per STUN-capable URL (2)", len(clients))
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: iceNATRule.ID}); n != 0 {
		t.Errorf("%s fired %d times although no Binding succeeded", iceNATRule.ID, n)
	}
	// pion ends a Binding transaction on the first error response: no
	// waiting for the STUN gather timeout.
	if res.Elapsed >= 500*time.Millisecond {
		t.Errorf("gathering took %v, want less than the 500ms STUN gather timeout", res.Elapsed)
	}
}

func TestWebRTCGatherAllocate403RemovesRelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		transport string
		servers   func(*testing.T, *server.Server) []server.ICEServer
	}{
		{"udp", "udp", func(_ *testing.T, srv *server.Server) []server.ICEServer { return srv.ICEServers() }},
		{"tcp", "tcp", func(t *testing.T, srv *server.Server) []server.ICEServer { return turnTCPOnly(t, srv.ICEServers()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addICERule(t, srv, iceAllocate403Rule)
			res := gatherICE(t, tc.servers(t, srv))

			checkNoCandidate(t, res, "relay")
			if tc.transport == "udp" && len(res.ByType("srflx")) == 0 {
				t.Error("no srflx candidate: Binding is not Allocate")
			}
			q := faults.Query{Rule: iceAllocate403Rule.ID, Method: "allocate", Class: "request", Transport: tc.transport}
			if n := srv.Faults().Journal().Count(q); n < 1 {
				t.Errorf("journal has no 403 on an Allocate over %s", tc.transport)
			}
			// stunfault signs the 403 (integrity auto) and pion's TURN client
			// takes it at once; an unsigned one it would ignore until its
			// Allocate timed out.
			if res.Elapsed > 2*time.Second {
				t.Errorf("gathering took %v: pion seems to have timed out rather than taken the signed 403", res.Elapsed)
			}
		})
	}
}

func TestWebRTCGatherOverTURNTCP(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	res := gatherICE(t, turnTCPOnly(t, srv.ICEServers()))

	// The relayed address is UDP whatever the transport to the TURN server,
	// and pion needs no tcp4 network type to reach a turn:?transport=tcp URL.
	checkRelayCandidates(t, srv, res)
	checkNoCandidate(t, res, "srflx") // STUN over TCP gives pion no srflx
	if len(res.ByType("host")) == 0 {
		t.Error("no host candidate")
	}
}

// pion's TURN client ignores an error response without MESSAGE-INTEGRITY to
// its signed Allocate: it retransmits (over TCP too, every 200ms, 400ms, ...)
// until its own timeout, so gathering hangs instead of failing fast.
func TestWebRTCGatherIgnoresUnsignedAllocate403(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	r := iceAllocate403Rule
	r.Action.Integrity = "none"
	addICERule(t, srv, r)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := gather.Gather(ctx, srv.ICEServers(), gather.Options{})
	if !errors.Is(err, context.DeadlineExceeded) || res.Complete {
		t.Fatalf("Gather: complete %v, err %v; want gathering still waiting for the Allocate at the deadline", res.Complete, err)
	}
	checkNoCandidate(t, res, "relay")
	for _, transport := range []string{"udp", "tcp"} {
		q := faults.Query{Rule: r.ID, Method: "allocate", Transport: transport}
		if n := srv.Faults().Journal().Count(q); n < 2 {
			t.Errorf("%d unsigned 403s sent over %s in 1s, want the request retransmitted at least once", n, transport)
		}
	}
}
