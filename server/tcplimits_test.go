package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// waitClosed reads c until the server closes it, failing the test when
// that takes longer than bound (a read deadline: the failure case only).
func waitClosed(t *testing.T, c net.Conn, bound time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server did not close the connection within %v", bound)
	}
}

// tcpBinding sends a Binding request over c and reads its response.
func tcpBinding(t *testing.T, c net.Conn) error {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := c.Write(req.Raw); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil {
		return err
	}
	if res.Type != stun.BindingSuccess {
		return errors.New("not a Binding success: " + res.Type.String())
	}
	return nil
}

func dialTCP(t *testing.T, srv *server.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", turnAddr(t, srv, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func tcpStats(t *testing.T, srv *server.Server) control.TCPStats {
	t.Helper()
	c, err := control.Dial(context.Background(), srv.ControlURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Listeners {
		if l.Transport == "tcp" {
			if l.TCP == nil {
				t.Fatal("stats: tcp listener without connection counts")
			}
			return *l.TCP
		}
	}
	t.Fatal("stats: no tcp listener")
	return control.TCPStats{}
}

// A TCP connection with no allocation that sends nothing for
// tcp_idle_timeout is closed; so is one stalled inside a message for
// tcp_frame_timeout. A connection with an allocation is kept.
func TestTCPConnectionTimeouts(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Server.TCPIdleTimeout = faults.Duration(200 * time.Millisecond)
	cfg.Server.TCPFrameTimeout = faults.Duration(200 * time.Millisecond)
	srv := startServer(t, &cfg)

	allocated := newTURNClient(t, srv, "tcp", "user", "pass")
	relay, err := allocated.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() }) // after the parallel subtests

	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"silent from the start", nil},
		{"silent after a Binding", nil}, // sends one below
		// A header announcing 1000 bytes of attributes, then 4 of them.
		{"stalled inside a STUN message", []byte("\x00\x01\x03\xe8\x21\x12\xa4\x42abcdefghijkl\x00\x80\x00\x00")},
		{"stalled inside a STUN header", []byte("\x00\x01\x03")},
		// ChannelData 0x4000 announcing 500 bytes, then 2 of them.
		{"stalled inside ChannelData", []byte("\x40\x00\x01\xf4ab")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialTCP(t, srv)
			if strings.HasSuffix(tc.name, "after a Binding") {
				if err := tcpBinding(t, c); err != nil {
					t.Fatal(err)
				}
			}
			if tc.bytes != nil {
				if _, err := c.Write(tc.bytes); err != nil {
					t.Fatal(err)
				}
			}
			waitClosed(t, c, 10*time.Second)
		})
	}
	t.Run("allocated", func(t *testing.T) {
		// Every idle connection above has been closed, long after the
		// timeouts: the allocated one still answers.
		t.Parallel()
		other := dialTCP(t, srv)
		waitClosed(t, other, 10*time.Second)
		if _, err := allocated.SendBindingRequest(); err != nil {
			t.Errorf("the allocated connection: %v, want it open", err)
		}
	})
}

// The timeouts are counted in stats.
func TestTCPTimeoutsAreCounted(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Server.TCPIdleTimeout = faults.Duration(50 * time.Millisecond)
	srv := startServer(t, &cfg)
	for range 3 {
		waitClosed(t, dialTCP(t, srv), 10*time.Second)
	}
	if st := tcpStats(t, srv); st.TimedOut != 3 {
		t.Errorf("timed_out = %d, want 3 (%+v)", st.TimedOut, st)
	}
}

// Beyond tcp_max_connections, new connections are closed as they are
// accepted, and counted; a closed connection frees its place.
func TestTCPMaxConnections(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Server.TCPMaxConnections = 2
	srv := startServer(t, &cfg)
	first, second := dialTCP(t, srv), dialTCP(t, srv)
	for _, c := range []net.Conn{first, second} {
		if err := tcpBinding(t, c); err != nil {
			t.Fatalf("a connection under the cap: %v", err)
		}
	}
	third := dialTCP(t, srv)
	waitClosed(t, third, 10*time.Second)
	if st := tcpStats(t, srv); st.Refused != 1 || st.Open != 2 {
		t.Errorf("stats: %+v, want refused 1, open 2", st)
	}

	_ = first.Close()
	// The server sees the close and frees the place; until it has, a new
	// connection is refused. Each try is one accept.
	for try := 0; ; try++ {
		c := dialTCP(t, srv)
		if tcpBinding(t, c) == nil {
			break
		}
		if try == 100 {
			t.Fatal("closing a connection did not free its place")
		}
	}
}

// The HTTP side bounds how long a client may take over its headers and its
// body, and how long a keep-alive connection may idle; a webhook request
// held for its latency is not cut by them.
func TestHTTPTimeouts(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.HTTP.ReadTimeout = faults.Duration(200 * time.Millisecond)
	cfg.HTTP.IdleTimeout = faults.Duration(200 * time.Millisecond)
	cfg.Webhooks = map[string]config.Webhook{"crm": {
		Mode: "sync", Latency: faults.Duration(500 * time.Millisecond), Status: 201, MaxBodyBytes: 1 << 20,
	}}
	srv := startServer(t, &cfg)
	addr := srv.HTTPAddr().String()
	dial := func(t *testing.T, what string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := io.WriteString(c, what); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		waitClosed(t, dial(t, "POST /webhook/crm HTTP/1.1\r\nHost: x\r\n"), 10*time.Second)
	})
	t.Run("slow body", func(t *testing.T) {
		t.Parallel()
		c := dial(t, "POST /webhook/crm HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"ticket\"")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("stalled body: got %d, want 400", resp.StatusCode)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		c := dial(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		waitClosed(t, c, 10*time.Second)
	})
	t.Run("held longer than the timeouts", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Post(srv.HTTPURL()+"/webhook/crm", "application/json", strings.NewReader(`{"ticket":1}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Errorf("held request: got %d, want 201 after its latency", resp.StatusCode)
		}
	})
}
