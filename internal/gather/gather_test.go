package gather_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/internal/gather"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/servertest"
)

// TestMain fails the package when a gathering leaves a goroutine behind:
// Gather must close its peer connection and wait for pion's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer runs stunfault's default config on free loopback ports until
// the test ends.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	return servertest.New(t).Server
}

func gatherOK(t *testing.T, servers []server.ICEServer, opts gather.Options) gather.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := gather.Gather(ctx, servers, opts)
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, c := range res.Candidates {
		t.Logf("candidate %s (related %s:%d)", c, c.RelatedAddress, c.RelatedPort)
	}
	if !res.Complete {
		t.Fatal("gathering did not complete")
	}
	return res
}

func TestICEServersConvertsCredentials(t *testing.T) {
	t.Parallel()
	in := []server.ICEServer{
		{URLs: []string{"stun:127.0.0.1:3478"}},
		{URLs: []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}, Username: "user", Credential: "pass"},
	}
	out := gather.ICEServers(in)
	if len(out) != 2 {
		t.Fatalf("got %d servers, want 2", len(out))
	}
	if out[0].Credential != nil || out[0].Username != "" || out[0].URLs[0] != "stun:127.0.0.1:3478" {
		t.Errorf("stun server = %+v", out[0])
	}
	if out[1].Username != "user" || out[1].Credential != "pass" ||
		out[1].CredentialType != webrtc.ICECredentialTypePassword || len(out[1].URLs) != 2 {
		t.Errorf("turn server = %+v", out[1])
	}
	out[1].URLs[0] = "changed"
	if in[1].URLs[0] == "changed" {
		t.Error("ICEServers shares the URL slice with its input")
	}
}

func TestGatherWithoutServersGivesLoopbackHostCandidates(t *testing.T) {
	t.Parallel()
	res := gatherOK(t, nil, gather.Options{})
	if len(res.Candidates) == 0 {
		t.Fatal("no candidates")
	}
	for _, c := range res.Candidates {
		ap := c.AddrPort()
		if c.Type != "host" || c.Protocol != "udp" || !ap.Addr().IsLoopback() || !ap.Addr().Is4() {
			t.Errorf("candidate %s, want only udp4 host candidates on loopback", c)
		}
	}
}

func TestGatherIPFilterSelectsAddresses(t *testing.T) {
	t.Parallel()
	res := gatherOK(t, nil, gather.Options{IPFilter: func(netip.Addr) bool { return false }})
	if len(res.Candidates) != 0 {
		t.Errorf("got %v, want no candidates when the filter keeps no address", res.Candidates)
	}
}

func TestGatherRelayOnly(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	res := gatherOK(t, srv.ICEServers(), gather.Options{RelayOnly: true})
	if len(res.ByType("relay")) == 0 {
		t.Error("no relay candidate")
	}
	if n := len(res.Candidates) - len(res.ByType("relay")); n != 0 {
		t.Errorf("%d candidates other than relay under the relay policy", n)
	}
}

func TestGatherRejectsUnknownNetworkType(t *testing.T) {
	t.Parallel()
	_, err := gather.Gather(context.Background(), nil, gather.Options{NetworkTypes: []string{"sctp"}})
	if err == nil {
		t.Fatal("no error for network type sctp")
	}
}

// A STUN server that never answers keeps gathering open past ctx: Gather
// returns at ctx's end with what it has, and closes everything.
func TestGatherIncompleteWhenContextEnds(t *testing.T) {
	t.Parallel()
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	servers := []server.ICEServer{{URLs: []string{"stun:" + silent.LocalAddr().String()}}}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := gather.Gather(ctx, servers, gather.Options{STUNGatherTimeout: 30 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a wrapped context.DeadlineExceeded", err)
	}
	if res.Complete {
		t.Error("Complete is true")
	}
	if len(res.ByType("host")) == 0 {
		t.Error("the host candidates gathered before the deadline are missing")
	}
	// Closing the peer connection cancels pion's pending Binding: Gather
	// must not wait for the 30 s STUN timeout.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Gather took %v after a 200ms deadline", d)
	}
}
