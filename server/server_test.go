package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server"
)

func TestBindingReturnsClientAddress(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			conn, err := net.Dial(transport, turnAddr(t, srv, transport))
			if err != nil {
				t.Fatal(err)
			}
			c, err := stun.NewClient(conn)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			var got stun.XORMappedAddress
			var callErr error
			err = c.Do(stun.MustBuild(stun.TransactionID, stun.BindingRequest), func(e stun.Event) {
				if e.Error != nil {
					callErr = e.Error
					return
				}
				if e.Message.Type != stun.BindingSuccess {
					callErr = fmt.Errorf("got %s, want %s", e.Message.Type, stun.BindingSuccess)
					return
				}
				callErr = got.GetFrom(e.Message)
			})
			if err != nil || callErr != nil {
				t.Fatalf("binding: %v %v", err, callErr)
			}
			local := conn.LocalAddr().String()
			if got.String() != local {
				t.Errorf("XOR-MAPPED-ADDRESS = %s, want the client's own address %s", got, local)
			}
		})
	}
}

func TestUDPAndTCPShareAPortWhenBothAskForZero(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	u, tc := srv.TURNAddr("udp"), srv.TURNAddr("tcp")
	if u.Port() == 0 || u != tc {
		t.Errorf("udp %s, tcp %s: want the same non-zero port", u, tc)
	}
}

func TestSecondServerOnSamePortsFails(t *testing.T) {
	t.Parallel()
	first := startServer(t, nil)
	cfg := first.Config()
	for i, l := range first.Listeners() {
		cfg.Listen[i].Address = l.Addr.String()
	}
	second, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(context.Background())
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start on taken ports: got %v, want an error wrapping EADDRINUSE", err)
	}
	// The ports the first server holds must still work.
	if err := second.Close(); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
}

func TestCloseIsIdempotentAndStartAfterCloseFails(t *testing.T) {
	t.Parallel()
	srv, err := server.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); !errors.Is(err, server.ErrStarted) {
		t.Errorf("second Start: got %v, want ErrStarted", err)
	}
	addr := srv.STUNAddr().String()
	for i := range 2 {
		if err := srv.Close(); err != nil {
			t.Errorf("Close #%d: %v", i+1, err)
		}
	}
	if err := srv.Start(context.Background()); !errors.Is(err, server.ErrServerClosed) {
		t.Errorf("Start after Close: got %v, want ErrServerClosed", err)
	}
	// The UDP port is free again.
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port not released after Close: %v", err)
	}
	_ = pc.Close()
}

func TestCloseEndsOpenTCPConnections(t *testing.T) {
	t.Parallel()
	srv, err := server.New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := srv.TURNAddr("tcp")
	conn, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A Binding answered over the connection proves pion has accepted it.
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	if _, err := conn.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	if _, err := conn.Read(buf); err != nil {
		t.Fatalf("reading the Binding response: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// The server closed its end: the read ends with EOF or a reset, not the
	// deadline.
	_, err = conn.Read(buf)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read after Close: got %v, want EOF or connection reset", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Relay.MinPort, cfg.Relay.MaxPort = 60000, 50000
	if _, err := server.New(cfg); err == nil {
		t.Fatal("New accepted min_port > max_port")
	}
}

func TestICEServersUseBoundAddresses(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	ice := srv.ICEServers()
	if len(ice) != 2 {
		t.Fatalf("ICEServers = %+v, want a stun and a turn entry", ice)
	}
	port := strconv.Itoa(int(srv.STUNAddr().Port()))
	want := "stun:127.0.0.1:" + port
	if ice[0].URLs[0] != want {
		t.Errorf("stun URL = %q, want %q", ice[0].URLs[0], want)
	}
	wantTURN := []string{"turn:127.0.0.1:" + port + "?transport=udp", "turn:127.0.0.1:" + port + "?transport=tcp"}
	if fmt.Sprint(ice[1].URLs) != fmt.Sprint(wantTURN) || ice[1].Username != "user" || ice[1].Credential != "pass" {
		t.Errorf("turn entry = %+v, want %v with user/pass", ice[1], wantTURN)
	}
}
