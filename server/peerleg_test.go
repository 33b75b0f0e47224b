package server_test

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// coturn's turnutils_uclient through stunfault to a turnutils_peer echo:
// a peer-leg rule dropping the first 5 datagrams from the peer to the relay
// loses exactly those 5 of 20, and nothing on the client leg fires.
func TestCoturnUclientLosesWhatAPeerLegRuleDrops(t *testing.T) {
	t.Parallel()
	needTool(t, "turnutils_uclient")
	cfg := testConfig()
	cfg.Rules = []faults.Rule{{ID: "peer-loss", Times: 5, Match: faults.Match{Leg: "peer", Peers: []string{"127.0.0.1"}},
		Action: faults.Action{Type: "drop"}}}
	srv := startServer(t, &cfg)
	peerPort := startEchoPeer(t)
	const messages = 20
	a := srv.TURNAddr("udp")
	out := runTool(t, "turnutils_uclient", "-c", "-n", strconv.Itoa(messages), "-p", strconv.Itoa(int(a.Port())),
		"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-u", "user", "-w", "pass", a.Addr().String())
	lost := regexp.MustCompile(`Total lost packets (\d+)`).FindStringSubmatch(out)
	if lost == nil || lost[1] != "5" {
		t.Errorf("want 5 lost packets; turnutils_uclient printed:\n%s", out)
	}
	j := srv.Faults().Journal()
	all := j.Query(faults.Query{})
	if len(all) != 5 {
		t.Fatalf("journal has %d entries, want the 5 peer-leg drops: %+v", len(all), all)
	}
	for _, e := range all {
		if e.Leg != "peer" || e.Direction != "in" || e.Relay.Port() == 0 || e.Client.Port() != uint16(peerPort) {
			t.Errorf("entry %+v: want a peer-leg drop from the peer at port %d", e, peerPort)
		}
	}
}
