package server_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// End-to-end tests of every action on Binding, over UDP and TCP: rules are
// added to a running server and the client asserts what reaches it.

// transports are the STUN/TURN transports every action is tested over.
var transports = []string{"udp", "tcp"}

const (
	// arrive bounds the wait for a message that must come.
	arrive = 5 * time.Second
	// absent is how long a test waits to conclude that a message does not
	// come. Only absence is concluded from it, never an order.
	absent = 300 * time.Millisecond
)

// addRule adds r to srv's engine, failing the test when it is rejected.
func addRule(t *testing.T, srv *server.Server, r faults.Rule) {
	t.Helper()
	if _, err := srv.Faults().Add(r); err != nil {
		t.Fatalf("adding rule %q: %v", r.ID, err)
	}
}

func ptr[T any](v T) *T { return &v }

// bindingRequest returns a Binding request with a fresh transaction ID, the
// given attributes and a FINGERPRINT.
func bindingRequest(setters ...stun.Setter) *stun.Message {
	s := append([]stun.Setter{stun.TransactionID, stun.BindingRequest}, setters...)
	return stun.MustBuild(append(s, stun.Fingerprint)...)
}

// rawClient is a client socket that sees exactly the bytes the server sends.
type rawClient struct {
	t         *testing.T
	transport string
	conn      net.Conn
}

// dialRaw connects to srv's listener of transport from localIP (any
// 127.0.0.0/8 address on Linux loopback; "" for the default).
func dialRaw(t *testing.T, srv *server.Server, transport, localIP string) *rawClient {
	t.Helper()
	var d net.Dialer
	if localIP != "" {
		ip := net.ParseIP(localIP)
		if transport == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	c, err := d.Dial(transport, turnAddr(t, srv, transport))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, transport: transport, conn: c}
}

// addr is the client's own address, as the server sees it.
func (c *rawClient) addr() netip.AddrPort {
	return netip.MustParseAddrPort(c.conn.LocalAddr().String())
}

func (c *rawClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next message the server sent within wait: one datagram
// over UDP, one frame as long as its 20-byte header says over TCP.
func (c *rawClient) next(wait time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	if c.transport == "udp" {
		buf := make([]byte, 1500)
		n, err := c.conn.Read(buf)
		return buf[:n], err
	}
	hdr, err := c.readFull(20, wait)
	if err != nil {
		return hdr, err
	}
	body, err := c.readFull(int(binary.BigEndian.Uint16(hdr[2:4])), wait)
	return append(hdr, body...), err
}

// readFull reads exactly n bytes of the TCP stream within wait.
func (c *rawClient) readFull(n int, wait time.Duration) ([]byte, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, n)
	got, err := io.ReadFull(c.conn, b)
	return b[:got], err
}

// response returns the next message, decoded, failing the test when none
// comes or it does not decode.
func (c *rawClient) response() *stun.Message {
	c.t.Helper()
	b, err := c.next(arrive)
	if err != nil {
		c.t.Fatalf("no response: %v", err)
	}
	return decode(c.t, b)
}

// exchange sends req and returns the response.
func (c *rawClient) exchange(req *stun.Message) *stun.Message {
	c.t.Helper()
	c.send(req.Raw)
	return c.response()
}

// noResponse fails the test when a message arrives within absent.
func (c *rawClient) noResponse() {
	c.t.Helper()
	if b, err := c.next(absent); err == nil || len(b) > 0 {
		c.t.Fatalf("got %d bytes, want nothing", len(b))
	}
}

// wantClosed fails the test unless the server ends the TCP connection: a read
// returns EOF or a reset, not a timeout.
func (c *rawClient) wantClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(arrive))
	buf := make([]byte, 1500)
	for {
		n, err := c.conn.Read(buf)
		switch {
		case err == nil:
			c.t.Logf("read %d bytes before the end", n)
			continue
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return
		}
		c.t.Fatalf("read: %v, want EOF or a reset", err)
	}
}

func decode(t *testing.T, b []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	return m
}

// mappedAddress returns the XOR-MAPPED-ADDRESS of a Binding success.
func mappedAddress(t *testing.T, m *stun.Message) netip.AddrPort {
	t.Helper()
	if m.Type != stun.BindingSuccess {
		t.Fatalf("got %s (code %d), want a Binding success", m.Type, errorCode(t, m))
	}
	var a stun.XORMappedAddress
	if err := a.GetFrom(m); err != nil {
		t.Fatalf("XOR-MAPPED-ADDRESS: %v", err)
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)) //nolint:gosec // a port
}

// wantSuccess fails the test unless m is the Binding success to req that
// maps c's address.
func (c *rawClient) wantSuccess(req, m *stun.Message) {
	c.t.Helper()
	if m.TransactionID != req.TransactionID {
		c.t.Fatalf("response to transaction %x, want %x", m.TransactionID, req.TransactionID)
	}
	if got := mappedAddress(c.t, m); got != c.addr() {
		c.t.Fatalf("XOR-MAPPED-ADDRESS = %s, want %s", got, c.addr())
	}
}

// fired returns how often rule id fired, by the journal.
func fired(srv *server.Server, id string) int {
	return srv.Faults().Journal().Count(faults.Query{Rule: id})
}

func TestErrorActionAnswersBinding(t *testing.T) {
	t.Parallel()
	unknownAttr := stun.RawAttribute{Type: 0x7777, Value: []byte("?")} // comprehension-required, unknown
	tests := []struct {
		name      string
		action    faults.Action
		attrs     []stun.Setter
		wantCode  int
		wantText  string
		checkResp func(t *testing.T, m *stun.Message)
	}{
		{name: "403", action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"}, wantCode: 403, wantText: "Forbidden"},
		{name: "500 default reason", action: faults.Action{Type: "error", Code: 500}, wantCode: 500, wantText: "Server Error"},
		{name: "486 custom reason", action: faults.Action{Type: "error", Code: 486, Reason: "No more for you"}, wantCode: 486, wantText: "No more for you"},
		{
			name:     "300 alternate",
			action:   faults.Action{Type: "error", Code: 300, Alternate: "127.0.0.1:3479"},
			wantCode: 300, wantText: "Try Alternate",
			checkResp: func(t *testing.T, m *stun.Message) {
				var alt stun.AlternateServer
				if err := alt.GetFrom(m); err != nil {
					t.Fatalf("ALTERNATE-SERVER: %v", err)
				}
				if got := (&net.UDPAddr{IP: alt.IP, Port: alt.Port}).String(); got != "127.0.0.1:3479" {
					t.Errorf("ALTERNATE-SERVER = %s, want 127.0.0.1:3479", got)
				}
			},
		},
		{
			name:     "420 unknown attribute",
			action:   faults.Action{Type: "error", Code: 420},
			attrs:    []stun.Setter{unknownAttr},
			wantCode: 420, wantText: "Unknown Attribute",
			checkResp: func(t *testing.T, m *stun.Message) {
				var ua stun.UnknownAttributes
				if err := ua.GetFrom(m); err != nil {
					t.Fatalf("UNKNOWN-ATTRIBUTES: %v", err)
				}
				if !slices.Contains(ua, unknownAttr.Type) {
					t.Errorf("UNKNOWN-ATTRIBUTES = %v, want it to list %v", ua, unknownAttr.Type)
				}
			},
		},
	}
	for _, tt := range tests {
		for _, transport := range transports {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				addRule(t, srv, faults.Rule{
					ID:     "err",
					Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
					Action: tt.action,
				})
				c := dialRaw(t, srv, transport, "")
				req := bindingRequest(tt.attrs...)
				res := c.exchange(req)

				if res.Type != stun.NewType(stun.MethodBinding, stun.ClassErrorResponse) {
					t.Fatalf("got %s, want a Binding error response", res.Type)
				}
				if res.TransactionID != req.TransactionID {
					t.Errorf("transaction ID %x, want %x", res.TransactionID, req.TransactionID)
				}
				var ec stun.ErrorCodeAttribute
				if err := ec.GetFrom(res); err != nil {
					t.Fatalf("ERROR-CODE: %v", err)
				}
				if int(ec.Code) != tt.wantCode || string(ec.Reason) != tt.wantText {
					t.Errorf("ERROR-CODE = %d %q, want %d %q", ec.Code, ec.Reason, tt.wantCode, tt.wantText)
				}
				var sw stun.Software
				if err := sw.GetFrom(res); err != nil || sw.String() != "stunfault" {
					t.Errorf("SOFTWARE = %q (%v), want %q", sw, err, "stunfault")
				}
				if err := stun.Fingerprint.Check(res); err != nil {
					t.Errorf("FINGERPRINT: %v", err)
				}
				if res.Contains(stun.AttrMessageIntegrity) {
					t.Error("an error to an unsigned request carries MESSAGE-INTEGRITY")
				}
				if tt.checkResp != nil {
					tt.checkResp(t, res)
				}
				q := faults.Query{Rule: "err", Method: "binding", Transport: transport, Direction: "in"}
				if es := srv.Faults().Journal().Query(q); len(es) != 1 || es[0].Code != tt.wantCode || es[0].Action != "error" {
					t.Errorf("journal = %+v, want one error %d", es, tt.wantCode)
				}
			})
		}
	}
}

func TestDropActionOnBinding(t *testing.T) {
	t.Parallel()
	for _, transport := range transports {
		t.Run("every send/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{ID: "drop", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}})
			c := newSTUNClient(t, srv, transport)
			_, err := stunBinding(t, c)
			if !errors.Is(err, stun.ErrTransactionTimeOut) {
				t.Fatalf("Binding: got %v, want %v", err, stun.ErrTransactionTimeOut)
			}
			if n := fired(srv, "drop"); n < 2 {
				t.Errorf("drop fired %d times, want the request and its retransmissions", n)
			}
		})
		t.Run("first send only/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID:     "drop-first",
				Match:  faults.Match{Methods: []string{"binding"}, Transmission: 1},
				Action: faults.Action{Type: "drop"},
			})
			c := newSTUNClient(t, srv, transport)
			res, err := stunBinding(t, c)
			if err != nil {
				t.Fatalf("Binding: %v (the retransmission should pass)", err)
			}
			if res.Type != stun.BindingSuccess {
				t.Fatalf("got %s, want a Binding success", res.Type)
			}
			if n := fired(srv, "drop-first"); n != 1 {
				t.Errorf("drop-first fired %d times, want 1", n)
			}
		})
	}
}

// TestDelayActionSlowsOnlyItsClient: a delayed message arrives at least the
// delay late, and messages of other clients, or other messages of the same
// socket, overtake it.
func TestDelayActionSlowsOnlyItsClient(t *testing.T) {
	t.Parallel()
	const delay = 200 * time.Millisecond
	for _, dir := range []string{"in", "out"} {
		for _, transport := range transports {
			t.Run("other client/"+dir+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				m := faults.Match{Methods: []string{"binding"}, Direction: dir, Sources: []string{"127.0.0.2/32"}}
				if dir == "out" {
					m.Classes = []string{"success"}
				}
				addRule(t, srv, faults.Rule{ID: "slow", Match: m, Action: faults.Action{Type: "delay", Delay: faults.Duration(delay)}})
				slow := dialRaw(t, srv, transport, "127.0.0.2")
				fast := dialRaw(t, srv, transport, "127.0.0.1")

				slowReq, fastReq := bindingRequest(), bindingRequest()
				start := time.Now()
				slow.send(slowReq.Raw)
				fast.send(fastReq.Raw)
				fast.wantSuccess(fastReq, fast.response())
				if b, err := slow.next(time.Millisecond); err == nil || len(b) > 0 {
					t.Fatal("the delayed response arrived before the undelayed one")
				}
				slow.wantSuccess(slowReq, slow.response())
				if rtt := time.Since(start); rtt < delay {
					t.Errorf("delayed round trip took %v, want at least %v", rtt, delay)
				}
				if n := fired(srv, "slow"); n != 1 {
					t.Errorf("slow fired %d times, want 1", n)
				}
			})
		}
	}
	for _, transport := range transports {
		t.Run("same socket/in/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "slow",
				Match: faults.Match{Methods: []string{"binding"}, Attributes: []faults.AttributeMatch{
					{Type: "SOFTWARE", Contains: "slow"},
				}},
				Action: faults.Action{Type: "delay", Delay: faults.Duration(delay)},
			})
			c := dialRaw(t, srv, transport, "")
			slowReq, fastReq := bindingRequest(stun.NewSoftware("slow")), bindingRequest()
			start := time.Now()
			c.send(slowReq.Raw)
			c.send(fastReq.Raw)
			c.wantSuccess(fastReq, c.response())
			c.wantSuccess(slowReq, c.response())
			if rtt := time.Since(start); rtt < delay {
				t.Errorf("delayed round trip took %v, want at least %v", rtt, delay)
			}
		})
	}
}

func TestDuplicateAction(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"in", "out"} {
		for _, transport := range transports {
			t.Run(dir+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				m := faults.Match{Methods: []string{"binding"}, Direction: dir}
				if dir == "out" {
					m.Classes = []string{"success"}
				}
				addRule(t, srv, faults.Rule{ID: "dup", Times: 1, Match: m, Action: faults.Action{Type: "duplicate", Copies: 2}})
				c := dialRaw(t, srv, transport, "")
				req := bindingRequest()
				first := c.exchange(req)
				c.wantSuccess(req, first)
				for i := 2; i <= 3; i++ {
					res := c.response()
					c.wantSuccess(req, res)
					if string(res.Raw) != string(first.Raw) {
						t.Errorf("response %d differs from the first", i)
					}
				}
				// Exactly three: the next message is the answer to the next
				// request (the rule fired its one time).
				next := bindingRequest()
				c.wantSuccess(next, c.exchange(next))
				if n := fired(srv, "dup"); n != 1 {
					t.Errorf("dup fired %d times, want 1", n)
				}
			})
		}
	}
}

func TestCorruptAndTruncateOutbound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		action faults.Action
		check  func(t *testing.T, c *rawClient, got []byte)
	}{
		{"corrupt header", faults.Action{Type: "corrupt", Target: "header"}, func(t *testing.T, _ *rawClient, got []byte) {
			if stun.IsMessage(got) {
				t.Error("stun.IsMessage accepts a message with a corrupted header")
			}
		}},
		{"corrupt fingerprint", faults.Action{Type: "corrupt", Target: "fingerprint", Count: 4}, func(t *testing.T, _ *rawClient, got []byte) {
			m := decode(t, got)
			if err := stun.Fingerprint.Check(m); err == nil {
				t.Error("FINGERPRINT still checks")
			}
		}},
		{"corrupt attribute", faults.Action{Type: "corrupt", Target: "attribute"}, func(t *testing.T, c *rawClient, got []byte) {
			m := decode(t, got)
			if a := mappedAddress(t, m); a == c.addr() {
				t.Errorf("XOR-MAPPED-ADDRESS is still the client's address %s", a)
			}
		}},
	}
	for _, tt := range tests {
		for _, transport := range transports {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				addRule(t, srv, faults.Rule{
					ID: "mangle", Times: 1,
					Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}, Direction: "out"},
					Action: tt.action,
				})
				c := dialRaw(t, srv, transport, "")
				c.send(bindingRequest().Raw)
				got, err := c.next(arrive)
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				tt.check(t, c, got)
				// The length is kept: on TCP the stream stays in step.
				next := bindingRequest()
				c.wantSuccess(next, c.exchange(next))
				if n := fired(srv, "mangle"); n != 1 {
					t.Errorf("rule fired %d times, want 1", n)
				}
			})
		}
	}
	for _, transport := range transports {
		t.Run("truncate/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "cut", Times: 1,
				Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}, Direction: "out"},
				Action: faults.Action{Type: "truncate", Length: 20},
			})
			c := dialRaw(t, srv, transport, "")
			c.send(bindingRequest().Raw)
			if transport == "udp" {
				got, err := c.next(arrive)
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				if m := (&stun.Message{Raw: got}); len(got) != 20 || m.Decode() == nil {
					t.Fatalf("got %d bytes that decode, want a 20-byte header that does not", len(got))
				}
				return
			}
			// TCP: 20 bytes of header whose length promises more; what
			// follows is the next response, so a client framing by that
			// length is out of step.
			hdr, err := c.readFull(20, arrive)
			if err != nil {
				t.Fatalf("reading the cut header: %v", err)
			}
			promised := int(binary.BigEndian.Uint16(hdr[2:4]))
			if !stun.IsMessage(hdr) || promised == 0 {
				t.Fatalf("first 20 bytes %x: want a STUN header promising an attribute body", hdr)
			}
			next := bindingRequest()
			c.send(next.Raw)
			rest := c.response() // framed from the next message's own header
			c.wantSuccess(next, rest)
		})
	}
}

// TestCorruptAndTruncateInbound: on TCP a request pion cannot frame ends the
// connection (DESIGN.md); on UDP pion discards it and the listener lives on.
func TestCorruptAndTruncateInbound(t *testing.T) {
	t.Parallel()
	actions := map[string]faults.Action{
		"truncate":       {Type: "truncate", Length: 20},
		"corrupt header": {Type: "corrupt", Target: "header"},
	}
	for name, action := range actions {
		for _, transport := range transports {
			t.Run(name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				addRule(t, srv, faults.Rule{
					ID: "mangle", Times: 1,
					Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
					Action: action,
				})
				c := dialRaw(t, srv, transport, "")
				c.send(bindingRequest().Raw)
				if transport == "tcp" {
					c.wantClosed()
					c = dialRaw(t, srv, transport, "") // a new connection is served
				} else {
					c.noResponse()
				}
				next := bindingRequest()
				c.wantSuccess(next, c.exchange(next))
				if n := fired(srv, "mangle"); n != 1 {
					t.Errorf("rule fired %d times, want 1", n)
				}
			})
		}
	}
}

func TestMappedAddressActionIsWhatTheClientReports(t *testing.T) {
	t.Parallel()
	const want = "203.0.113.7:40000"
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID:     "nat",
				Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}, Direction: "out"},
				Action: faults.Action{Type: "mapped_address", Address: want},
			})
			res, err := stunBinding(t, newSTUNClient(t, srv, transport))
			if err != nil {
				t.Fatalf("Binding: %v", err)
			}
			if got := mappedAddress(t, res).String(); got != want {
				t.Errorf("XOR-MAPPED-ADDRESS = %s, want %s", got, want)
			}
			if err := stun.Fingerprint.Check(res); err != nil {
				t.Errorf("FINGERPRINT: %v", err)
			}
		})
	}
}

func TestCloseActionEndsTheTCPConnection(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"in", "out"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID:     "hangup",
				Match:  faults.Match{Methods: []string{"binding"}, Direction: dir, Transports: []string{"tcp"}},
				Action: faults.Action{Type: "close"},
			})
			c := dialRaw(t, srv, "tcp", "")
			c.send(bindingRequest().Raw)
			c.wantClosed()
			if n := fired(srv, "hangup"); n != 1 {
				t.Errorf("hangup fired %d times, want 1", n)
			}
			// UDP is not affected by a TCP-only rule.
			u := dialRaw(t, srv, "udp", "")
			req := bindingRequest()
			u.wantSuccess(req, u.exchange(req))
		})
	}
}

// TestRateLimitActionLetsTheBurstThrough runs on a clock that does not move
// unless told, so the bucket refills only on Advance.
func TestRateLimitActionLetsTheBurstThrough(t *testing.T) {
	t.Parallel()
	thens := map[string]*faults.Action{
		"error": {Type: "error", Code: 403},
		"drop":  {Type: "drop"},
	}
	for name, then := range thens {
		for _, transport := range transports {
			t.Run(name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				clk := newFakeClock()
				srv := startServer(t, nil, server.WithClock(clk))
				addRule(t, srv, faults.Rule{
					ID:     "limit",
					Match:  faults.Match{Methods: []string{"binding"}},
					Action: faults.Action{Type: "ratelimit", Rate: 1, Burst: 2, Then: then},
				})
				c := dialRaw(t, srv, transport, "")
				for range 2 {
					req := bindingRequest()
					c.wantSuccess(req, c.exchange(req))
				}
				over := bindingRequest()
				if then.Type == "error" {
					res := c.exchange(over)
					if got := errorCode(t, res); got != 403 || res.TransactionID != over.TransactionID {
						t.Fatalf("third Binding: got %s code %d, want 403", res.Type, got)
					}
				} else {
					c.send(over.Raw)
					c.noResponse()
				}
				clk.Advance(time.Second) // one token back
				req := bindingRequest()
				c.wantSuccess(req, c.exchange(req))
				if es := srv.Faults().Journal().Query(faults.Query{Rule: "limit"}); len(es) != 1 || es[0].Action != then.Type {
					t.Errorf("journal = %+v, want one %s", es, then.Type)
				}
			})
		}
	}
}
