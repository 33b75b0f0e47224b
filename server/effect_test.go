package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/stunframe"
)

// These tests apply each action's effect to packetConn and tcpConn over fake
// conns (an in-memory PacketConn, net.Pipe), with no socket and no pion,
// as CoreDNS tests its plugins: what the far side gets is checked byte for
// byte. The end-to-end tests (actions_test.go and others) check the same
// actions against real clients.

var fakeClient = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}

// sentinel is a ChannelData message: rules without methods never match it,
// so it passes and marks the end of what a test sent.
var sentinel = []byte{0x40, 0x00, 0x00, 0x04, 'E', 'N', 'D', '!'}

// seen is what came out of a path: frames or datagrams on the far side,
// replies to the sender, and whether a TCP stream ended.
type seen struct {
	out     [][]byte
	replies [][]byte
	closed  bool
}

// harness drives one side of one wrapped conn.
type harness interface {
	// send passes msg through the wrapper in the harness's direction.
	send(msg []byte)
	// flush returns what came out since the last flush, waiting for
	// wantReplies replies.
	flush(t *testing.T, wantReplies int) seen
}

func newInterceptor(t *testing.T, clock faults.Clock, rules ...faults.Rule) *interceptor {
	t.Helper()
	delays := newDelayQueue(clock)
	eng := faults.NewEngine(faults.EngineOptions{Clock: clock, Seed: 1, Holder: delays})
	for _, r := range rules {
		if _, err := eng.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	return &interceptor{
		engine: eng, clock: clock, realm: "stunfault.test", software: "stunfault",
		log: slog.New(slog.DiscardHandler), delays: delays,
	}
}

// udpInHarness feeds datagrams to packetConn.ReadFrom, as pion's read loop
// calls it.
type udpInHarness struct {
	f   *fakePacketConn
	got chan []byte
}

func newUDPIn(t *testing.T, ic *interceptor) harness {
	f := newFakePacketConn()
	var loops sync.WaitGroup
	pc := newPacketConn(f, ic, &loops)
	h := &udpInHarness{f: f, got: make(chan []byte, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, stunframe.MaxFrame)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			h.got <- append([]byte(nil), buf[:n]...)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done; loops.Wait() })
	return h
}

func (h *udpInHarness) send(msg []byte) { h.f.deliver(msg, fakeClient) }

func (h *udpInHarness) flush(t *testing.T, wantReplies int) seen {
	t.Helper()
	h.f.deliver(sentinel, fakeClient)
	var s seen
	for b := range h.got {
		if bytes.Equal(b, sentinel) {
			break
		}
		s.out = append(s.out, b)
	}
	h.f.mu.Lock() // replies were written by the reader before it read the sentinel
	for _, d := range h.f.written {
		s.replies = append(s.replies, d.data)
	}
	h.f.written = nil
	h.f.mu.Unlock()
	return s
}

// udpOutHarness writes datagrams through packetConn.WriteTo, as pion does.
type udpOutHarness struct {
	f  *fakePacketConn
	pc *packetConn
}

func newUDPOut(t *testing.T, ic *interceptor) harness {
	f := newFakePacketConn()
	var loops sync.WaitGroup
	pc := newPacketConn(f, ic, &loops)
	t.Cleanup(func() { _ = pc.Close() })
	return &udpOutHarness{f: f, pc: pc}
}

func (h *udpOutHarness) send(msg []byte) {
	if _, err := h.pc.WriteTo(msg, fakeClient); err != nil {
		panic(err)
	}
}

func (h *udpOutHarness) flush(*testing.T, int) seen {
	var s seen
	h.f.mu.Lock()
	for _, d := range h.f.written {
		s.out = append(s.out, d.data)
	}
	h.f.written = nil
	h.f.mu.Unlock()
	return s
}

// tcpInHarness writes frames on the client end of a pipe and reads what
// tcpConn hands pion, split into frames as pion's framer splits them (one
// Read may hand over several).
type tcpInHarness struct {
	cli     net.Conn
	writes  chan []byte
	got     chan []byte
	replies chan []byte
	eof     chan struct{}
}

func newTCPIn(t *testing.T, ic *interceptor) harness {
	srv, cli := net.Pipe()
	tc := newTCPConn(srv, ic)
	h := &tcpInHarness{cli: cli, writes: make(chan []byte, 64), got: make(chan []byte, 256), replies: make(chan []byte, 64), eof: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // pion's read loop
		defer wg.Done()
		defer close(h.eof)
		buf := make([]byte, stunframe.MaxFrame)
		for {
			n, err := tc.Read(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			for len(b) > 0 {
				size, err := stunframe.Size(b)
				if err != nil || size > len(b) {
					size = len(b) // part of a frame (truncate): as it came
				}
				h.got <- append([]byte(nil), b[:size]...)
				b = b[size:]
			}
		}
	}()
	go func() { // the client's writes
		defer wg.Done()
		for b := range h.writes {
			_, _ = cli.Write(b)
		}
	}()
	go func() { // the client's reads: replies
		defer wg.Done()
		fr := stunframe.NewReader(cli)
		for {
			f, err := fr.Next()
			if err != nil {
				return
			}
			h.replies <- append([]byte(nil), f...)
		}
	}()
	t.Cleanup(func() { close(h.writes); _ = tc.Close(); _ = cli.Close(); wg.Wait() })
	return h
}

func (h *tcpInHarness) send(msg []byte) { h.writes <- msg }

func (h *tcpInHarness) flush(t *testing.T, wantReplies int) seen {
	t.Helper()
	h.writes <- sentinel
	var s seen
loop:
	for {
		select {
		case b := <-h.got:
			if bytes.Equal(b, sentinel) {
				break loop
			}
			s.out = append(s.out, b)
		case <-h.eof:
			for len(h.got) > 0 {
				s.out = append(s.out, <-h.got)
			}
			s.closed = true
			break loop
		}
	}
	s.replies = waitReplies(t, h.replies, wantReplies)
	return s
}

// tcpOutHarness writes frames through tcpConn.Write, as pion does, and
// reads them on the client end of the pipe, one Read per Write.
type tcpOutHarness struct {
	tc  *tcpConn
	got chan []byte
	eof chan struct{}
}

func newTCPOut(t *testing.T, ic *interceptor) harness {
	srv, cli := net.Pipe()
	tc := newTCPConn(srv, ic)
	h := &tcpOutHarness{tc: tc, got: make(chan []byte, 256), eof: make(chan struct{})}
	go func() {
		defer close(h.eof)
		buf := make([]byte, stunframe.MaxFrame)
		for {
			n, err := cli.Read(buf)
			if err != nil {
				return
			}
			h.got <- append([]byte(nil), buf[:n]...)
		}
	}()
	t.Cleanup(func() { _ = tc.Close(); _ = cli.Close(); <-h.eof })
	return h
}

func (h *tcpOutHarness) send(msg []byte) { _, _ = h.tc.Write(msg) }

func (h *tcpOutHarness) flush(*testing.T, int) seen {
	var s seen
	if _, err := h.tc.Write(sentinel); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		panic(err)
	}
	for {
		select {
		case b := <-h.got:
			if bytes.Equal(b, sentinel) {
				return s
			}
			s.out = append(s.out, b)
		case <-h.eof:
			for len(h.got) > 0 {
				s.out = append(s.out, <-h.got)
			}
			s.closed = true
			return s
		}
	}
}

func waitReplies(t *testing.T, ch chan []byte, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		select {
		case b := <-ch:
			out = append(out, b)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d replies, want %d", len(out), n)
		}
	}
	return out
}

// effectCases has one case per action type: the rule (its match widened
// to each direction and transport in turn), the message, and what the far
// side must see. TestEffects fails for a registered type missing here.
var effectCases = map[string]struct {
	rule    faults.Rule
	msg     func() []byte
	sends   int           // messages sent (default 1)
	advance time.Duration // then move the clock on and flush again
	replies int           // replies the sender gets
	check   func(t *testing.T, tr faults.Transport, dir faults.Direction, msg []byte, s, later seen)
}{
	"pass": {
		rule: faults.Rule{Action: faults.Action{Type: "pass"}},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, _ seen) {
			wantOut(t, s, msg)
		},
	},
	"drop": {
		rule: faults.Rule{Action: faults.Action{Type: "drop"}},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, _ []byte, s, _ seen) {
			wantOut(t, s)
		},
	},
	"error": {
		rule:    faults.Rule{Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"}},
		replies: 1,
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, _ seen) {
			wantOut(t, s)
			m := &stun.Message{Raw: s.replies[0]}
			var code stun.ErrorCodeAttribute
			if err := m.Decode(); err != nil || code.GetFrom(m) != nil || code.Code != 403 || m.Type != stun.BindingError {
				t.Errorf("reply %v %v (%v), want a Binding 403", m.Type, code.Code, err)
			}
			if want := (&stun.Message{Raw: msg}); want.Decode() == nil && m.TransactionID != want.TransactionID {
				t.Error("reply has another transaction ID")
			}
		},
	},
	"delay": {
		rule:    faults.Rule{Action: faults.Action{Type: "delay", Delay: faults.Duration(time.Second)}},
		advance: time.Second,
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, later seen) {
			wantOut(t, s)
			wantOut(t, later, msg)
		},
	},
	"duplicate": {
		rule: faults.Rule{Action: faults.Action{Type: "duplicate", Copies: 2}},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, _ seen) {
			wantOut(t, s, msg, msg, msg)
		},
	},
	"truncate": {
		rule: faults.Rule{Action: faults.Action{Type: "truncate", Length: 20}},
		check: func(t *testing.T, tr faults.Transport, dir faults.Direction, msg []byte, s, _ seen) {
			wantOut(t, s, msg[:20])
			if tr == faults.TCP && dir == faults.In && !s.closed {
				t.Error("the stream goes on after a cut frame, want EOF")
			}
		},
	},
	"corrupt": {
		rule: faults.Rule{Action: faults.Action{Type: "corrupt", Target: "attribute", Count: 2}},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, _ seen) {
			if len(s.out) != 1 || len(s.out[0]) != len(msg) || bytes.Equal(s.out[0], msg) {
				t.Fatalf("out = %x, want one message of %d bytes, changed", s.out, len(msg))
			}
			diff := 0
			for i := range msg {
				if msg[i] != s.out[0][i] {
					diff++
				}
			}
			if diff != 2 {
				t.Errorf("%d bytes changed, want 2", diff)
			}
		},
	},
	"mapped_address": {
		rule: faults.Rule{
			Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}},
			Action: faults.Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
		},
		msg: func() []byte {
			return stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
				&stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, stun.Fingerprint).Raw
		},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, _ []byte, s, _ seen) {
			if len(s.out) != 1 {
				t.Fatalf("out = %d messages, want 1", len(s.out))
			}
			m := &stun.Message{Raw: s.out[0]}
			var a stun.XORMappedAddress
			if err := m.Decode(); err != nil || a.GetFrom(m) != nil || a.String() != "203.0.113.7:40000" {
				t.Errorf("XOR-MAPPED-ADDRESS = %v (%v), want 203.0.113.7:40000", a, err)
			}
		},
	},
	"close": {
		rule: faults.Rule{Action: faults.Action{Type: "close"}},
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, _ []byte, s, _ seen) {
			wantOut(t, s)
			if !s.closed {
				t.Error("connection still open")
			}
		},
	},
	"ratelimit": {
		rule:  faults.Rule{Action: faults.Action{Type: "ratelimit", Rate: 0.001, Burst: 1, Then: &faults.Action{Type: "drop"}}},
		sends: 3,
		check: func(t *testing.T, _ faults.Transport, _ faults.Direction, msg []byte, s, _ seen) {
			wantOut(t, s, msg) // the burst passes, the excess is dropped
		},
	},
}

func wantOut(t *testing.T, s seen, want ...[]byte) {
	t.Helper()
	if !slices.EqualFunc(s.out, want, bytes.Equal) {
		t.Errorf("far side got %d messages %x, want %d %x", len(s.out), s.out, len(want), want)
	}
}

// TestEffects walks every registered action type, and for each transport
// and direction the type claims (a rule scoped there validates), applies it
// to a message through the wrapper and checks what the far side gets.
func TestEffects(t *testing.T) {
	paths := []struct {
		tr  faults.Transport
		dir faults.Direction
		new func(*testing.T, *interceptor) harness
	}{
		{faults.UDP, faults.In, newUDPIn},
		{faults.UDP, faults.Out, newUDPOut},
		{faults.TCP, faults.In, newTCPIn},
		{faults.TCP, faults.Out, newTCPOut},
	}
	for _, kind := range faults.Kinds() {
		tc, ok := effectCases[kind]
		if !ok {
			t.Errorf("action type %s has no case in effectCases", kind)
			continue
		}
		claimed := 0
		for _, p := range paths {
			rule := tc.rule.Clone()
			rule.Match.Direction = p.dir.String()
			rule.Match.Transports = []string{p.tr.String()}
			if rule.Validate() != nil {
				continue // the type does not apply here
			}
			claimed++
			t.Run(fmt.Sprintf("%s/%s-%s", kind, p.tr, p.dir), func(t *testing.T) {
				clock := faults.NewManualClock(time.Unix(0, 0))
				h := p.new(t, newInterceptor(t, clock, rule))
				msg := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("effect test"), stun.Fingerprint).Raw
				if tc.msg != nil {
					msg = tc.msg()
				}
				for range max(tc.sends, 1) {
					h.send(msg)
				}
				s := h.flush(t, tc.replies)
				var later seen
				if tc.advance > 0 {
					clock.Advance(tc.advance)
					later = h.flush(t, 0)
				}
				tc.check(t, p.tr, p.dir, msg, s, later)
			})
		}
		if claimed == 0 {
			t.Errorf("action type %s applies nowhere", kind)
		}
	}
}

// TestEveryKindHasAnEffect: each kind a Verdict can carry has its own
// effect (the walk in TestEffects covers the configurable ones; this one
// also DelayOverflow).
func TestEveryKindHasAnEffect(t *testing.T) {
	for k := range faults.NumKinds {
		if effects[k] == nil {
			t.Errorf("no effect for %v", faults.ActionKind(k))
		}
	}
}

// TestNoAllocationPerMessage: the wrapper allocates nothing for a message no
// rule fires on, in or out, nor for an injected error once its scratch
// buffer is warm (BenchmarkPacketConnPassThrough measures the time).
func TestNoAllocationPerMessage(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	tests := []struct {
		name string
		rule *faults.Rule
	}{
		{"no rule", nil},
		{"rule for other messages", &faults.Rule{Match: faults.Match{Methods: []string{"allocate"}}, Action: faults.Action{Type: "drop"}}},
		{"injected error", &faults.Rule{Action: faults.Action{Type: "error", Code: 403}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []faults.Rule
			if tt.rule != nil {
				rules = append(rules, *tt.rule)
			}
			ic := newInterceptor(t, faults.SystemClock{}, rules...)
			var loops sync.WaitGroup
			// The socket has a request, then the sentinel (which no rule
			// matches): an injected error is answered and read on from,
			// and ReadFrom returns the sentinel.
			pc := newPacketConn(&altPacketConn{data: [][]byte{req, sentinel}}, ic, &loops)
			buf := make([]byte, 1600)
			step := func() {
				n, addr, _ := pc.ReadFrom(buf)
				_, _ = pc.WriteTo(buf[:n], addr)
			}
			step() // warm
			if n := testing.AllocsPerRun(100, step); n != 0 {
				t.Errorf("%v allocations per message, want 0", n)
			}
		})
	}
}

// altPacketConn answers ReadFrom with each of data in turn, for ever, and
// discards writes.
type altPacketConn struct {
	memPacketConn
	data [][]byte
	i    int
}

func (a *altPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	d := a.data[a.i%len(a.data)]
	a.i++
	return copy(p, d), fakeClient, nil
}
