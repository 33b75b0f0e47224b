package main

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// The dashboard's peer-leg panel: a relay's datagrams from and to its peer,
// and what a peer-leg rule did to them, are on the first render
// (--dump-dom) and then follow the traffic live.
func TestChromiumDashboardPeerLeg(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	srv := startStunfault(t, nil, faults.Rule{
		ID: "peer-loss", Times: 1,
		Match:  faults.Match{Leg: "peer", Direction: "in", Peers: []string{"127.0.0.1/32"}},
		Action: faults.Action{Type: "drop"},
	})
	relay, peer := allocateWithPeer(t, srv)
	relayOut := func(n int) {
		t.Helper()
		buf := make([]byte, 1500)
		for range n {
			if _, err := relay.WriteTo([]byte("media"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := peer.ReadFrom(buf); err != nil {
				t.Fatalf("the peer got nothing: %v", err)
			}
		}
	}
	relayOut(3)
	for _, msg := range []string{"lost", "kept"} { // the first is peer-loss's
		if _, err := peer.WriteTo([]byte(msg), relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := relay.ReadFrom(buf); err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("the client got %q, %v; want the second datagram", buf[:n], err)
	}

	addr := relay.LocalAddr().String()
	dom := dumpDOM(t, ctx, srv.HTTPURL()+"/")
	row := regexp.MustCompile(fmt.Sprintf(`<tr data-relay="%s"><td class="id">%[1]s</td><td class="num in"[^>]*>2</td><td class="num out"[^>]*>3</td><td class="fired">drop 1 in</td></tr>`,
		regexp.QuoteMeta(addr)))
	if !row.MatchString(dom) {
		t.Errorf("--dump-dom: no peer-leg row for %s with 2 in, 3 out, drop 1 in:\n%.4000s", addr, dom)
	}

	page := openInChromium(t, ctx, srv.HTTPURL()+"/")
	sel := fmt.Sprintf(`#peer-legs tr[data-relay="%s"] td.out`, addr)
	waitFor(t, ctx, page, "the relay's row", fmt.Sprintf(`document.querySelector('%s')`, sel), nil)
	relayOut(4)
	var out string
	waitFor(t, ctx, page, "7 datagrams out", fmt.Sprintf(`(() => { const td = document.querySelector('%s'); return td && /^7\b/.test(td.textContent) && td.textContent; })()`, sel), &out)
	if !regexp.MustCompile(`^7 \d+/s$`).MatchString(out) {
		t.Errorf("the out cell: %q, want 7 and a rate per second", out)
	}
}

// allocateWithPeer allocates a UDP relay on srv with a pion client and
// returns it with a peer socket on loopback.
func allocateWithPeer(t *testing.T, srv *server.Server) (net.PacketConn, net.PacketConn) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() }) // last: it ends the client's read loop
	addr := srv.TURNAddr("udp").String()
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Username: "user", Password: "pass",
		Realm: srv.Config().Server.Realm, Conn: conn,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	return relay, peer
}
