package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/servertest"
)

// wait bounds every wait for an answer that must come.
const wait = 5 * time.Second

// levelChecks holds, for each level of lab.toml, a check with pion's
// clients of the fault the level injects, on the wire: what TestSheet shows
// through coturn's tools, checked here without them, and fast (RTOs of 10
// and 20 ms). A level without a check fails TestLevelsWithPionClients.
var levelChecks = map[string]func(t *testing.T, srv *servertest.Server){
	"level1": func(t *testing.T, srv *servertest.Server) {
		if res, err := bind(t, srv, "udp", 10*time.Millisecond); err == nil {
			t.Fatalf("Binding got %s, want no answer", res.Type)
		}
		if n := srv.Faults().Journal().Count(faults.Query{Rule: "blackhole"}); n < 2 {
			t.Errorf("blackhole fired %d times, want the request and its retransmissions", n)
		}
	},
	"level2": func(t *testing.T, srv *servertest.Server) {
		c := dialRaw(t, srv)
		realm := srv.Config().Server.Realm
		challenge := c.exchange(t, allocate("", "", realm, ""))
		var nonce stun.Nonce
		if code(challenge) != 401 || nonce.GetFrom(challenge) != nil {
			t.Fatalf("unsigned Allocate: got %s code %d, want pion's 401 with a NONCE", challenge.Type, code(challenge))
		}
		res := c.exchange(t, allocate("user", "pass", realm, nonce.String()))
		if code(res) != 401 || res.Contains(stun.AttrMessageIntegrity) {
			t.Errorf("signed Allocate with the right password: got %s code %d, want an unsigned 401", res.Type, code(res))
		}
	},
	"level3": func(t *testing.T, srv *servertest.Server) {
		if _, err := bind(t, srv, "udp", 10*time.Millisecond); err != nil {
			t.Fatalf("Binding: %v, want the retransmission answered", err)
		}
		relay, err := turnClient(t, srv).Allocate()
		if err != nil {
			t.Fatalf("Allocate: %v, want the retransmissions answered", err)
		}
		_ = relay.Close()
		for _, m := range []string{"binding", "allocate"} {
			if n := srv.Faults().Journal().Count(faults.Query{Rule: "first-lost", Method: m}); n < 1 {
				t.Errorf("no first transmission of a %s was dropped", m)
			}
		}
	},
	"level4": func(t *testing.T, srv *servertest.Server) {
		start := time.Now()
		if _, err := bind(t, srv, "udp", 300*time.Millisecond); err != nil {
			t.Fatalf("Binding: %v", err)
		}
		if rtt := time.Since(start); rtt < 900*time.Millisecond {
			t.Errorf("Binding answered in %v, want about 1 s", rtt)
		}
	},
	"level5": func(t *testing.T, srv *servertest.Server) {
		res, err := bind(t, srv, "udp", 10*time.Millisecond)
		if err != nil {
			t.Fatalf("Binding: %v", err)
		}
		var xor stun.XORMappedAddress
		if err := xor.GetFrom(res); err != nil || xor.String() != "203.0.113.7:40000" {
			t.Errorf("XOR-MAPPED-ADDRESS %s (%v), want the NAT's 203.0.113.7:40000", xor, err)
		}
	},
	"level6": func(t *testing.T, srv *servertest.Server) {
		if res, err := bind(t, srv, "udp", 10*time.Millisecond); err != nil || code(res) != 0 {
			t.Fatalf("Binding: %v, want STUN to work", err)
		}
		_, err := turnClient(t, srv).Allocate()
		var te *stun.TurnError
		if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
			t.Errorf("Allocate: %v, want 403", err)
		}
	},
	"level7": func(t *testing.T, srv *servertest.Server) {
		if res, err := bind(t, srv, "udp", 10*time.Millisecond); err != nil || code(res) != 0 {
			t.Fatalf("Binding with no screen pop: %v code %d, want a success", err, code(res))
		}
		// A screen-pop call with a ticket, held open by the webhook's
		// 10 s latency; cancelled once the Binding has been refused.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.HTTPURL()+"/webhook/servicenow",
				strings.NewReader(`{"custom_attributes":{"ticket_id":"INC0012345"}}`))
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			if res, err := (&http.Client{Transport: tr}).Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
			}
		}()
		defer func() { cancel(); <-done }()
		waitInflight(t, srv, 1)
		if res, err := bind(t, srv, "udp", 10*time.Millisecond); err != nil || code(res) != 403 {
			t.Fatalf("Binding during the screen pop: %v code %d, want 403", err, code(res))
		}
		cancel()
		<-done
		waitInflight(t, srv, 0)
		if res, err := bind(t, srv, "udp", 10*time.Millisecond); err != nil || code(res) != 0 {
			t.Errorf("Binding after the screen pop: %v code %d, want a success", err, code(res))
		}
	},
}

// Every level of lab.toml, served as `go run . -config examples/lab/lab.toml
// -scenario levelN` would (on free ports here), injects its fault, seen by
// pion's clients.
func TestLevelsWithPionClients(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("lab.toml")
	if err != nil {
		t.Fatal(err)
	}
	names := levels(cfg)
	if len(names) != len(levelChecks) {
		t.Errorf("lab.toml has levels %v, the test checks %d", names, len(levelChecks))
	}
	for _, name := range names {
		check, ok := levelChecks[name]
		if !ok {
			t.Errorf("level %s has no check", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if cfg.Scenarios[name].Description == "" {
				t.Error("no description")
			}
			srv := servertest.New(t, servertest.WithConfig(cfg))
			if _, err := srv.Faults().ActivateScenario(name); err != nil {
				t.Fatal(err)
			}
			check(t, srv)
		})
	}
}

// bind performs one Binding over transport with a pion/stun client whose
// first retransmission timeout is rto, and returns a copy of the answer.
func bind(t *testing.T, srv *servertest.Server, transport string, rto time.Duration) (*stun.Message, error) {
	t.Helper()
	conn, err := net.Dial(transport, srv.TURNAddr(transport).String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := stun.NewClient(conn, stun.WithRTO(rto))
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	defer c.Close()
	var res *stun.Message
	var resErr error
	err = c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint), func(e stun.Event) {
		if resErr = e.Error; resErr == nil {
			res = new(stun.Message)
			resErr = e.Message.CloneTo(res)
		}
	})
	if err != nil {
		return nil, err
	}
	return res, resErr
}

// code is the ERROR-CODE of an error response, 0 otherwise.
func code(m *stun.Message) int {
	var ec stun.ErrorCodeAttribute
	if m == nil || m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return int(ec.Code)
}

// turnClient returns a listening pion TURN client over UDP with the lab's
// credentials and a 20 ms RTO.
func turnClient(t *testing.T, srv *servertest.Server) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	addr := srv.TURNAddr("udp").String()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: "user", Password: "pass",
		Conn: conn, RTO: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c
}

// rawConn is a UDP socket that exchanges single STUN messages.
type rawConn struct{ net.Conn }

func dialRaw(t *testing.T, srv *servertest.Server) rawConn {
	t.Helper()
	c, err := net.Dial("udp", srv.TURNAddr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return rawConn{c}
}

// exchange sends m and returns the answer to its transaction.
func (c rawConn) exchange(t *testing.T, m *stun.Message) *stun.Message {
	t.Helper()
	if _, err := c.Write(m.Raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to %s: %v", m.Type, err)
		}
		res := new(stun.Message)
		if err := stun.Decode(append([]byte(nil), buf[:n]...), res); err == nil && res.TransactionID == m.TransactionID {
			return res
		}
	}
}

// allocate returns an Allocate request for a UDP relay, signed with user's
// long-term credentials when nonce is not empty.
func allocate(user, pass, realm, nonce string) *stun.Message {
	s := []stun.Setter{
		stun.TransactionID,
		stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
	}
	if nonce != "" {
		s = append(s, stun.NewUsername(user), stun.NewRealm(realm), stun.NewNonce(nonce),
			stun.NewLongTermIntegrity(user, realm, pass))
	}
	return stun.MustBuild(append(s, stun.Fingerprint)...)
}

// waitInflight waits, woken by the webhook's own changes, until it holds
// want requests.
func waitInflight(t *testing.T, srv *servertest.Server, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	hub := srv.Webhooks()
	if err := hub.Wait(ctx, func() bool { return hub.Inflight("servicenow") == want }); err != nil {
		t.Fatalf("webhook holds %d requests, want %d", hub.Inflight("servicenow"), want)
	}
}
