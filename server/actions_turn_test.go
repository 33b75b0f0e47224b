package server_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// End-to-end tests of actions on TURN signalling, driven by pion's TURN
// client over UDP and TCP.

// clientRTO is the TURN client's first retransmission timeout: short, so a
// dropped or ignored request is retried (or given up) quickly.
const clientRTO = 20 * time.Millisecond

// allocateRequest returns an Allocate request for a UDP relay; signed with
// user's long-term credentials when nonce is not empty.
func allocateRequest(user, pass, realm, nonce string) *stun.Message {
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

// TestErrorOnSignedAllocate: an error answering a signed request carries a
// MESSAGE-INTEGRITY under the user's key (auto), a wrong one (bad) or none;
// pion's TURN client reports the first and ignores the others. The key is a
// [[users]] password's or a REST credential's.
func TestErrorOnSignedAllocate(t *testing.T) {
	t.Parallel()
	restUser, restPass := restCredential(time.Now().Add(time.Hour), "alice")
	creds := []struct{ name, user, pass string }{
		{"user", "user", "pass"},
		{"rest", restUser, restPass},
	}
	for _, integrity := range []string{"auto", "bad", "none"} {
		for _, cred := range creds {
			for _, transport := range transports {
				t.Run(integrity+"/"+cred.name+"/"+transport, func(t *testing.T) {
					t.Parallel()
					cfg := testConfig()
					cfg.Auth.Secret = testSecret
					srv := startServer(t, &cfg)
					realm := srv.Config().Server.Realm
					addRule(t, srv, faults.Rule{
						ID:     "turn-403",
						Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: ptr(true)},
						Action: faults.Action{Type: "error", Code: 403, Integrity: integrity},
					})

					// On the wire: pion's own 401 gives the nonce, and the
					// signed Allocate gets the rule's 403.
					c := dialRaw(t, srv, transport, "")
					challenge := c.exchange(allocateRequest(cred.user, cred.pass, realm, ""))
					var nonce stun.Nonce
					if err := nonce.GetFrom(challenge); err != nil || errorCode(t, challenge) != 401 {
						t.Fatalf("unsigned Allocate: got %s without a 401 and NONCE (%v)", challenge.Type, err)
					}
					req := allocateRequest(cred.user, cred.pass, realm, nonce.String())
					res := c.exchange(req)
					if got := errorCode(t, res); got != 403 || res.TransactionID != req.TransactionID {
						t.Fatalf("signed Allocate: got %s code %d, want 403", res.Type, got)
					}
					if err := stun.Fingerprint.Check(res); err != nil {
						t.Errorf("FINGERPRINT: %v", err)
					}
					miErr := stun.NewLongTermIntegrity(cred.user, realm, cred.pass).Check(res)
					switch integrity {
					case "auto":
						if miErr != nil {
							t.Errorf("MESSAGE-INTEGRITY does not check under the user's key: %v", miErr)
						}
					case "bad":
						if !res.Contains(stun.AttrMessageIntegrity) || miErr == nil {
							t.Errorf("want a MESSAGE-INTEGRITY that fails the check, got check error %v", miErr)
						}
					case "none":
						if res.Contains(stun.AttrMessageIntegrity) {
							t.Error("integrity none: the response carries MESSAGE-INTEGRITY")
						}
					}

					// pion's TURN client.
					tc := newTURNClientRTO(t, srv, transport, cred.user, cred.pass, clientRTO)
					ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
					defer cancel()
					relay, err := tc.AllocateWithContext(ctx)
					if err == nil {
						_ = relay.Close()
						t.Fatal("Allocate succeeded, want it refused")
					}
					var te *stun.TurnError
					switch {
					case integrity == "auto" && (!errors.As(err, &te) || te.ErrorCodeAttr.Code != 403):
						t.Errorf("Allocate: %v, want a 403 TURN error", err)
					case integrity != "auto" && !errors.Is(err, context.DeadlineExceeded):
						t.Errorf("Allocate: %v, want the client to ignore the response and time out", err)
					}
				})
			}
		}
	}
}

// TestInjected401OnFirstAllocateIsRetried: the NONCE in an injected 401 is
// one pion accepts, so the client's authenticated retry succeeds.
func TestInjected401OnFirstAllocateIsRetried(t *testing.T) {
	t.Parallel()
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "challenge", Times: 1,
				Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: ptr(false)},
				Action: faults.Action{Type: "error", Code: 401},
			})
			c := newTURNClientRTO(t, srv, transport, "user", "pass", clientRTO)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate after an injected 401: %v", err)
			}
			defer relay.Close()
			if n := fired(srv, "challenge"); n != 1 {
				t.Errorf("challenge fired %d times, want 1", n)
			}
			relayRoundTrip(t, relay)
		})
	}
}

// TestInjected438IsRetried: pion's client retries a CreatePermission and a
// ChannelBind answered with 438 with the injected NONCE, and the retry
// passes.
func TestInjected438IsRetried(t *testing.T) {
	t.Parallel()
	for _, transport := range transports {
		t.Run("createpermission/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "stale", Times: 1,
				Match:  faults.Match{Methods: []string{"createpermission"}},
				Action: faults.Action{Type: "error", Code: 438},
			})
			c := newTURNClientRTO(t, srv, transport, "user", "pass", clientRTO)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			// The relayed conn's first write to a peer creates the
			// permission, retrying on 438.
			relayRoundTrip(t, relay)
			if n := fired(srv, "stale"); n != 1 {
				t.Errorf("stale fired %d times, want 1", n)
			}
		})
		t.Run("channelbind/"+transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "stale", Times: 1,
				Match:  faults.Match{Methods: []string{"channelbind"}},
				Action: faults.Action{Type: "error", Code: 438},
			})
			// Journaled passes show the ChannelBind success and the
			// ChannelData that follows it.
			addRule(t, srv, faults.Rule{
				ID:     "bound",
				Match:  faults.Match{Methods: []string{"channelbind"}, Classes: []string{"success"}, Direction: "out"},
				Action: faults.Action{Type: "pass"},
			})
			addRule(t, srv, faults.Rule{
				ID:     "channel-data",
				Match:  faults.Match{Methods: []string{"channeldata"}},
				Action: faults.Action{Type: "pass"},
			})
			bound := srv.Faults().Subscribe(1, faults.Query{Rule: "bound"})
			defer bound.Close()

			c := newTURNClientRTO(t, srv, transport, "user", "pass", clientRTO)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate: %v", err)
			}
			defer relay.Close()
			peer := listenPeer(t, "127.0.0.1")
			// The first write to a peer starts the ChannelBind in the
			// background; data goes in Send indications meanwhile.
			relayTo(t, relay, peer, "before the channel")
			select {
			case <-bound.C:
			case <-time.After(arrive):
				t.Fatal("no ChannelBind success after the injected 438")
			}
			if n := fired(srv, "stale"); n != 1 {
				t.Errorf("stale fired %d times, want 1", n)
			}
			// Once the client has the success, its writes use the channel.
			deadline := time.Now().Add(arrive)
			for fired(srv, "channel-data") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the client never sent ChannelData on the bound channel")
				}
				relayTo(t, relay, peer, "over the channel")
			}
		})
	}
}

// TestDroppedAllocateIsRetransmitted: the TURN client's retransmission of a
// dropped Allocate gets through. When pion's success is what was dropped,
// pion answers the retransmission (same transaction) from the allocation it
// made, so the client still succeeds; only a new Allocate would get 437.
func TestDroppedAllocateIsRetransmitted(t *testing.T) {
	t.Parallel()
	matches := map[string]faults.Match{
		"request": {Methods: []string{"allocate"}},
		"success": {Methods: []string{"allocate"}, Classes: []string{"success"}, Direction: "out"},
	}
	for name, match := range matches {
		for _, transport := range transports {
			t.Run(name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				addRule(t, srv, faults.Rule{ID: "lost", Times: 1, Match: match, Action: faults.Action{Type: "drop"}})
				c := newTURNClientRTO(t, srv, transport, "user", "pass", clientRTO)
				relay, err := c.Allocate()
				if err != nil {
					t.Fatalf("Allocate: %v", err)
				}
				defer relay.Close()
				if n := fired(srv, "lost"); n != 1 {
					t.Errorf("lost fired %d times, want 1", n)
				}
			})
		}
	}
}

// relayRoundTrip sends data through relay to a fresh peer and back.
func relayRoundTrip(t *testing.T, relay net.PacketConn) {
	t.Helper()
	peer := listenPeer(t, "127.0.0.1")
	relayTo(t, relay, peer, "to the peer")
	back := []byte("to the client")
	if _, err := peer.WriteTo(back, relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(arrive))
	n, _, err := relay.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], back) {
		t.Fatalf("client got %q, %v; want %q", buf[:n], err, back)
	}
}

// relayTo writes msg through relay to peer and waits for the peer to get it.
func relayTo(t *testing.T, relay net.PacketConn, peer net.PacketConn, msg string) {
	t.Helper()
	if _, err := relay.WriteTo([]byte(msg), peer.LocalAddr()); err != nil {
		t.Fatalf("relay WriteTo %s: %v", peer.LocalAddr(), err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(arrive))
	n, _, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("peer got %q, %v; want %q", buf[:n], err, msg)
	}
}

// TestPionClientOn438 checks what DESIGN.md says pion's TURN client does
// with a 438: the relayed conn's first write to a peer retries its
// CreatePermission (see TestInjected438IsRetried), while an Allocate and a
// direct Client.CreatePermission hand the 438 to the caller.
func TestPionClientOn438(t *testing.T) {
	t.Parallel()
	srv := startServer(t, nil)
	addRule(t, srv, faults.Rule{
		ID: "stale-allocate", Times: 1,
		Match:  faults.Match{Methods: []string{"allocate"}, Authenticated: ptr(true)},
		Action: faults.Action{Type: "error", Code: 438},
	})
	addRule(t, srv, faults.Rule{
		ID: "stale-permission", Times: 1,
		Match:  faults.Match{Methods: []string{"createpermission"}},
		Action: faults.Action{Type: "error", Code: 438},
	})
	// No retransmissions: a retransmitted Allocate that reached pion after
	// the 438 would leave an allocation, and the next Allocate would get 437.
	c := newTURNClientRTO(t, srv, "udp", "user", "pass", arrive)
	var te *stun.TurnError
	if relay, err := c.Allocate(); !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeStaleNonce {
		if err == nil {
			_ = relay.Close()
		}
		t.Fatalf("Allocate answered 438: got %v, want the 438 as a TURN error (no retry)", err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("second Allocate: %v", err)
	}
	defer relay.Close()
	peer := listenPeer(t, "127.0.0.1")
	if err := c.CreatePermission(peer.LocalAddr()); err == nil {
		t.Fatal("Client.CreatePermission answered 438 succeeded: pion now retries it; update DESIGN.md")
	}
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatalf("CreatePermission after the 438: %v", err)
	}
}
