package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// peerLegsPage is GET /trace's peer_legs as a client reads them.
type peerLegsPage struct {
	Time     time.Time `json:"time"`
	PeerLegs []struct {
		Relay string     `json:"relay"`
		In    peerCounts `json:"in"`
		Out   peerCounts `json:"out"`
	} `json:"peer_legs"`
}

type peerCounts struct {
	Datagrams uint64            `json:"datagrams"`
	Bytes     uint64            `json:"bytes"`
	Decisions map[string]uint64 `json:"decisions"`
}

func getPeerLegs(t *testing.T, url string) peerLegsPage {
	t.Helper()
	res, err := http.Get(url + "/trace?since=0&limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p peerLegsPage
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("GET /trace: %v", err)
	}
	return p
}

// The peer leg is counted by direction and decision: on /metrics in all
// (kept when the allocation ends), on GET /trace per relay while it lives.
func TestPeerLegCounted(t *testing.T) {
	srv := startServer(t, nil)
	addRule(t, srv, faults.Rule{
		ID: "peer-drop-first", Times: 1,
		Match:  faults.Match{Leg: "peer", Direction: "in", Peers: []string{"127.0.0.1/32"}},
		Action: faults.Action{Type: "drop"},
	})
	tc := newTURNClient(t, srv, "udp", "user", "pass")
	relay, err := tc.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	peer := listenPeer(t, "127.0.0.1")

	for _, msg := range []string{"one", "two", "three"} { // out: 3 datagrams, 11 bytes
		relayTo(t, relay, peer, msg)
	}
	for _, msg := range []string{"lost", "kept"} { // in: the first is dropped
		if _, err := peer.WriteTo([]byte(msg), relay.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1500)
	_ = relay.SetReadDeadline(time.Now().Add(arrive))
	if n, _, err := relay.ReadFrom(buf); err != nil || string(buf[:n]) != "kept" {
		t.Fatalf("the client got %q, %v; want the second datagram", buf[:n], err)
	}

	metrics := []struct {
		labels       string
		count, bytes float64
	}{
		{"direction=out,decision=pass", 3, 11},
		{"direction=in,decision=drop", 1, 4},
		{"direction=in,decision=pass", 1, 4},
	}
	checkMetrics := func(when string) {
		t.Helper()
		fams := scrape(t, srv.HTTPURL())
		for _, m := range metrics {
			labels := strings.Split(m.labels, ",")
			for name, want := range map[string]float64{"stunfault_peer_datagrams_total": m.count, "stunfault_peer_bytes_total": m.bytes} {
				if got, ok := value(fams, name, labels...); !ok || got != want {
					t.Errorf("%s: %s{%s}: got %v (%v), want %v", when, name, m.labels, got, ok, want)
				}
			}
		}
		if got, _ := value(fams, "stunfault_rule_fired_total", "rule=peer-drop-first"); got != 1 {
			t.Errorf("%s: the peer-leg rule fired %v times on /metrics, want 1", when, got)
		}
	}
	checkMetrics("allocation live")

	p := getPeerLegs(t, srv.HTTPURL())
	if len(p.PeerLegs) != 1 {
		t.Fatalf("peer_legs: %+v, want the one relay", p.PeerLegs)
	}
	l := p.PeerLegs[0]
	if l.Relay != relay.LocalAddr().String() {
		t.Errorf("peer_legs relay %s, want the relayed address %s", l.Relay, relay.LocalAddr())
	}
	for _, c := range []struct {
		name string
		got  peerCounts
		want peerCounts
	}{
		{"in", l.In, peerCounts{2, 8, map[string]uint64{"drop": 1, "pass": 1}}},
		{"out", l.Out, peerCounts{3, 11, map[string]uint64{"pass": 3}}},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("peer_legs %s: got %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if p.Time.IsZero() {
		t.Error("GET /trace: no time")
	}

	// A permission permissions.expire ended drops the peer's datagrams
	// before pion reads them: dropped too. Nothing arrives to wait on, so
	// wait for the count (bounded).
	ctx, cancel := context.WithTimeout(context.Background(), arrive)
	defer cancel()
	if _, err := srv.ExpirePermissions(ctx, control.PermissionSelector{AllocationSelector: control.AllocationSelector{All: true}, Peer: "127.0.0.1"}); err != nil {
		t.Fatalf("ExpirePermissions: %v", err)
	}
	if _, err := peer.WriteTo([]byte("late"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if got, _ := value(scrape(t, srv.HTTPURL()), "stunfault_peer_datagrams_total", "direction=in", "decision=drop"); got == 2 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the datagram to an expired permission was never counted as dropped")
		}
	}
	metrics[1].count, metrics[1].bytes = 2, 8
	if l := getPeerLegs(t, srv.HTTPURL()).PeerLegs; len(l) != 1 || fmt.Sprint(l[0].In) != fmt.Sprint(peerCounts{3, 12, map[string]uint64{"drop": 2, "pass": 1}}) {
		t.Errorf("peer_legs after the expired permission: %+v, want in 3 datagrams, 12 bytes, 2 dropped", l)
	}

	// The allocation ends: its relay leaves peer_legs, and /metrics keeps
	// what it counted.
	if _, err := srv.ExpireAllocations(ctx, control.AllocationSelector{All: true}); err != nil {
		t.Fatalf("ExpireAllocations: %v", err)
	}
	if p := getPeerLegs(t, srv.HTTPURL()); len(p.PeerLegs) != 0 {
		t.Errorf("peer_legs after the allocation ended: %+v, want none", p.PeerLegs)
	}
	checkMetrics("allocation ended")
}
