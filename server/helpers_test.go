package server_test

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// testConfig is the embedded default moved onto free loopback ports, with
// two read loops per udp listener whatever the machine's CPUs (the default
// is one per CPU), so every test runs on several.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.Server.ReadLoops = 2
	cfg.Listen = []config.Listener{
		{Transport: "udp", Address: "127.0.0.1:0"},
		{Transport: "tcp", Address: "127.0.0.1:0"},
	}
	cfg.HTTP.Address = "127.0.0.1:0"
	return cfg
}

// startServer starts a server on cfg (testConfig when nil) through
// servertest, on free loopback ports, and closes it when the test ends.
func startServer(t testing.TB, cfg *config.Config, opts ...server.Option) *server.Server {
	t.Helper()
	c := testConfig()
	if cfg != nil {
		c = *cfg
	}
	return servertest.New(t, servertest.WithConfig(c), servertest.WithServerOptions(opts...)).Server
}

func turnAddr(t *testing.T, srv *server.Server, transport string) string {
	t.Helper()
	a := srv.TURNAddr(transport)
	if !a.IsValid() {
		t.Fatalf("no %s listener", transport)
	}
	return a.String()
}

// dialClientConn returns the client side socket for transport: a UDP socket
// on loopback, or a TCP connection to the server framed for pion's client.
func dialClientConn(t *testing.T, srv *server.Server, transport string) net.PacketConn {
	t.Helper()
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	case "tcp":
		c, err := net.Dial("tcp", turnAddr(t, srv, "tcp"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return turn.NewSTUNConn(c)
	}
	t.Fatalf("unknown transport %q", transport)
	return nil
}

// newTURNClient returns a listening pion TURN client for transport with the
// given credentials; it is closed when the test ends.
func newTURNClient(t *testing.T, srv *server.Server, transport, user, pass string) *turn.Client {
	t.Helper()
	return newTURNClientRTO(t, srv, transport, user, pass, 100*time.Millisecond)
}

// newTURNClientRTO is newTURNClient with the client's retransmission timeout.
func newTURNClientRTO(t *testing.T, srv *server.Server, transport, user, pass string, rto time.Duration) *turn.Client {
	t.Helper()
	addr := turnAddr(t, srv, transport)
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr,
		TURNServerAddr: addr,
		Username:       user,
		Password:       pass,
		Realm:          srv.Config().Server.Realm,
		Conn:           dialClientConn(t, srv, transport),
		RTO:            rto,
	})
	if err != nil {
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := c.Listen(); err != nil {
		t.Fatalf("client Listen: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// errorCode returns the ERROR-CODE of an error response, or 0.
func errorCode(t *testing.T, m *stun.Message) int {
	t.Helper()
	if m.Type.Class != stun.ClassErrorResponse {
		return 0
	}
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		t.Fatalf("error response without ERROR-CODE: %v", err)
	}
	return int(ec.Code)
}

// newSTUNClient returns a pion/stun client connected to srv over transport
// with a 10 ms RTO, so a dropped request times out, after its
// retransmissions, within about 300 ms. It is closed when the test ends.
//
// The client retransmits over TCP too (RFC 8489 says a client should not;
// pion's does, and the drop tests count on it), so a slow run may get two
// answers back to back. pion's stun.Client decodes whatever one Read
// returns as one message, so over TCP it reads through pion's STUN framer
// (stunStream): each Read is one whole answer, as on UDP.
func newSTUNClient(t *testing.T, srv *server.Server, transport string) *stun.Client {
	t.Helper()
	var conn stun.Connection
	nc, err := net.Dial(transport, turnAddr(t, srv, transport))
	if err != nil {
		t.Fatal(err)
	}
	conn = nc
	if transport == "tcp" {
		conn = stunStream{turn.NewSTUNConn(nc)}
	}
	c, err := stun.NewClient(conn, stun.WithRTO(10*time.Millisecond))
	if err != nil {
		_ = conn.Close()
		t.Fatalf("stun.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
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

// stunBinding performs one Binding transaction with c and returns a copy of
// the response, or the transaction's error.
func stunBinding(t *testing.T, c *stun.Client) (*stun.Message, error) {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	var (
		res    *stun.Message
		resErr error
	)
	err := c.Do(req, func(e stun.Event) {
		resErr = e.Error
		if e.Error == nil {
			res = new(stun.Message) // e.Message is the client's reused buffer
			if err := e.Message.CloneTo(res); err != nil {
				resErr = err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return res, resErr
}
