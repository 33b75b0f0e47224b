package server_test

import (
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// Relay data on the client leg is matched apart from signalling: a rule on
// send/channeldata drops what the client relays, and one on
// data/channeldata going out duplicates what the peer sends back, while
// Allocate and CreatePermission go through untouched.
func TestRelayDataRules(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, nil)
			addRule(t, srv, faults.Rule{
				ID: "lose-first-data", Times: 1,
				Match:  faults.Match{Methods: []string{"send", "channeldata"}},
				Action: faults.Action{Type: "drop"},
			})
			addRule(t, srv, faults.Rule{
				ID: "echo-data-twice", Times: 1,
				Match:  faults.Match{Methods: []string{"data", "channeldata"}, Direction: "out"},
				Action: faults.Action{Type: "duplicate", Copies: 1},
			})
			c := newTURNClientRTO(t, srv, transport, "user", "pass", clientRTO)
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("Allocate through data-only rules: %v", err)
			}
			defer relay.Close()
			peer := listenPeer(t, "127.0.0.1")

			// The first relayed datagram is dropped on the client leg; the
			// peer sees only the second. (Each carries at least 5 bytes:
			// pion's TCP framer waits for 9 buffered bytes, so a ChannelData
			// of 4 bytes or fewer over TCP waits for the next frame; see
			// docs/design.md.)
			if _, err := relay.WriteTo([]byte("lost datagram"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			relayTo(t, relay, peer, "kept datagram")
			if n := fired(srv, "lose-first-data"); n != 1 {
				t.Errorf("lose-first-data fired %d times, want 1", n)
			}

			// What the peer sends back reaches the client twice.
			if _, err := peer.WriteTo([]byte("twice"), relay.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			for i := range 2 {
				_ = relay.SetReadDeadline(time.Now().Add(arrive))
				n, _, err := relay.ReadFrom(buf)
				if err != nil || string(buf[:n]) != "twice" {
					t.Fatalf("copy %d at the client: %q, %v", i+1, buf[:n], err)
				}
			}
			if n := fired(srv, "echo-data-twice"); n != 1 {
				t.Errorf("echo-data-twice fired %d times, want 1", n)
			}
		})
	}
}
