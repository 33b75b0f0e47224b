package server_test

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/server"
)

const testSecret = "s3cret"

func restCredential(expiry time.Time, name string) (string, string) {
	user := strconv.FormatInt(expiry.Unix(), 10) + ":" + name
	return user, server.RESTPassword(testSecret, user)
}

func TestTURNRelaysBothWays(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Auth.Secret = testSecret
	srv := startServer(t, &cfg)
	restUser, restPass := restCredential(time.Now().Add(time.Hour), "alice")

	tests := []struct {
		name, transport, user, pass string
	}{
		{"udp/user", "udp", "user", "pass"},
		{"tcp/user", "tcp", "user", "pass"},
		{"udp/rest", "udp", restUser, restPass},
		{"tcp/rest", "tcp", restUser, restPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTURNClient(t, srv, tt.transport, tt.user, tt.pass)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			ra := relay.LocalAddr().(*net.UDPAddr)
			rc := srv.Config().Relay
			if !ra.IP.Equal(net.ParseIP(rc.Address)) || ra.Port < rc.MinPort || ra.Port > rc.MaxPort {
				t.Errorf("relayed address %s outside %s:%d-%d", ra, rc.Address, rc.MinPort, rc.MaxPort)
			}

			peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))

			// Client -> peer (Send indication or ChannelData, then UDP from the relay).
			out := []byte("hello peer over " + tt.name)
			if _, err := relay.WriteTo(out, peer.LocalAddr()); err != nil {
				t.Fatalf("relay WriteTo: %v", err)
			}
			buf := make([]byte, 1500)
			n, from, err := peer.ReadFrom(buf)
			if err != nil {
				t.Fatalf("peer read: %v", err)
			}
			if !bytes.Equal(buf[:n], out) {
				t.Errorf("peer got %q, want %q", buf[:n], out)
			}
			if from.String() != ra.String() {
				t.Errorf("peer got data from %s, want the relayed address %s", from, ra)
			}

			// Peer -> client (Data indication or ChannelData).
			back := []byte("hello client")
			if _, err := peer.WriteTo(back, ra); err != nil {
				t.Fatal(err)
			}
			n, from, err = relay.ReadFrom(buf)
			if err != nil {
				t.Fatalf("relay read: %v", err)
			}
			if !bytes.Equal(buf[:n], back) || from.String() != peer.LocalAddr().String() {
				t.Errorf("client got %q from %s, want %q from %s", buf[:n], from, back, peer.LocalAddr())
			}
		})
	}
}

func TestTURNRefusesBadCredentials(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Auth.Secret = testSecret
	srv := startServer(t, &cfg)
	expiredUser, expiredPass := restCredential(time.Now().Add(-time.Minute), "bob")
	forgedUser, _ := restCredential(time.Now().Add(time.Hour), "mallory")

	tests := []struct {
		name, user, pass string
	}{
		{"wrong password", "user", "wrong"},
		{"unknown user", "nobody", "pass"},
		{"expired REST credential", expiredUser, expiredPass},
		{"REST credential with wrong password", forgedUser, "bm90IHRoZSBobWFj"},
	}
	for _, tt := range tests {
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				c := newTURNClient(t, srv, transport, tt.user, tt.pass)
				relay, err := c.Allocate()
				if err == nil {
					relay.Close()
					t.Fatal("Allocate succeeded, want 401")
				}
				var te *stun.TurnError
				if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
					t.Fatalf("Allocate error = %v, want a 401 TURN error", err)
				}
			})
		}
	}
}

// TestPeersOutsideAllowPeersAreRefused: CreatePermission gets 403, a
// ChannelBind gets 401 (pion's answer to a refused permission), and a Send
// indication never reaches the peer.
func TestPeersOutsideAllowPeersAreRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Relay.AllowPeers = []string{"127.0.0.2/32"}
	srv := startServer(t, &cfg)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			c := newTURNClient(t, srv, transport, "user", "pass")
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

			err = c.CreatePermission(peer)
			var te *stun.TurnError
			if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeForbidden {
				t.Fatalf("CreatePermission to %s: got %v, want 403 Forbidden", peer, err)
			}

			res := channelBind(t, c, srv, transport, peer)
			if got := errorCode(t, res); got != int(stun.CodeUnauthorized) {
				t.Errorf("ChannelBind to %s: got %s code %d, want 401", peer, res.Type, got)
			}

			// A Send indication to a refused peer is dropped. pion handles
			// one message at a time per socket, so once a later relay to an
			// allowed peer has arrived, the refused one would have too.
			refused := listenPeer(t, "127.0.0.1")
			allowed := listenPeer(t, "127.0.0.2")
			send := stun.MustBuild(stun.TransactionID,
				stun.NewType(stun.MethodSend, stun.ClassIndication),
				&xorPeer{refused.LocalAddr().(*net.UDPAddr)},
				dataAttr("must not arrive"), stun.Fingerprint)
			if _, err := c.WriteTo(send.Raw, serverAddr(t, srv, transport)); err != nil {
				t.Fatal(err)
			}
			if _, err := relay.WriteTo([]byte("allowed"), allowed.LocalAddr()); err != nil {
				t.Fatalf("relay to allowed peer %s: %v", allowed.LocalAddr(), err)
			}
			buf := make([]byte, 1500)
			_ = allowed.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, _, err := allowed.ReadFrom(buf); err != nil || string(buf[:n]) != "allowed" {
				t.Fatalf("allowed peer: got %q, %v", buf[:n], err)
			}
			_ = refused.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _, err := refused.ReadFrom(buf); err == nil {
				t.Errorf("refused peer received %q", buf[:n])
			}
		})
	}
}

// channelBind sends a signed ChannelBind through the client's transaction
// machinery, reusing the nonce pion hands out, and returns the response.
func channelBind(t *testing.T, c *turn.Client, srv *server.Server, transport string, peer *net.UDPAddr) *stun.Message {
	t.Helper()
	server := serverAddr(t, srv, transport)
	realm := srv.Config().Server.Realm
	integrity := stun.NewLongTermIntegrity("user", realm, "pass")
	// First an unsigned request to learn a nonce.
	probe := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodChannelBind, stun.ClassRequest))
	res, err := c.PerformTransaction(probe, server, false)
	if err != nil {
		t.Fatalf("ChannelBind probe: %v", err)
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		t.Fatalf("no NONCE in %s: %v", res.Msg, err)
	}
	msg := stun.MustBuild(stun.TransactionID,
		stun.NewType(stun.MethodChannelBind, stun.ClassRequest),
		channelNumber(0x4000),
		&xorPeer{peer},
		stun.NewUsername("user"), stun.NewRealm(realm), nonce,
		integrity, stun.Fingerprint)
	res, err = c.PerformTransaction(msg, server, false)
	if err != nil {
		t.Fatalf("ChannelBind: %v", err)
	}
	return res.Msg
}

type channelNumber uint16

func (n channelNumber) AddTo(m *stun.Message) error {
	v := []byte{byte(n >> 8), byte(n), 0, 0}
	m.Add(stun.AttrChannelNumber, v)
	return nil
}

type xorPeer struct{ addr *net.UDPAddr }

func (p *xorPeer) AddTo(m *stun.Message) error {
	a := stun.XORMappedAddress{IP: p.addr.IP, Port: p.addr.Port}
	return a.AddToAs(m, stun.AttrXORPeerAddress)
}

type dataAttr string

func (d dataAttr) AddTo(m *stun.Message) error {
	m.Add(stun.AttrData, []byte(d))
	return nil
}

func listenPeer(t *testing.T, ip string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func serverAddr(t *testing.T, srv *server.Server, transport string) net.Addr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", turnAddr(t, srv, transport))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
