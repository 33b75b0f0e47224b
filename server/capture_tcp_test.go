package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// A message a rule changed on a TCP connection is in the capture twice,
// both times on the connection's own TCP stream, with sequence numbers that
// go on from one to the next: tshark reassembles the stream with no
// analysis warning and dissects both copies as STUN (what the client sent
// and what pion got; what pion wrote and what the client got). A delayed
// message is on it once. An inbound truncate's cut copy ends its stream.
// A TLS connection is captured the same way, in plaintext.
func TestCaptureTCPChangedMessages(t *testing.T) {
	tshark := tsharkPath(t)
	for _, transport := range []string{"tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			cfg := tlsConfig()
			srv := startServer(t, &cfg)
			dial := func() *rawClient {
				if transport == "tls" { // framed and captured as on TCP, in plaintext
					return &rawClient{t: t, transport: "tcp", conn: dialTLS(t, srv)}
				}
				return dialRaw(t, srv, "tcp", "")
			}
			captureChangedOnStream(t, tshark, srv, dial)
		})
	}
}

func captureChangedOnStream(t *testing.T, tshark string, srv *server.Server, dial func() *rawClient) {
	tcpOnly := []string{"tcp"}
	addRule(t, srv, faults.Rule{
		ID: "corrupt-in", Times: 1,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}, Transports: tcpOnly},
		Action: faults.Action{Type: "corrupt", Target: "attribute", Count: 2},
	})
	addRule(t, srv, faults.Rule{
		ID: "nat-out", Times: 1,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}, Direction: "out", Transports: tcpOnly},
		Action: faults.Action{Type: "mapped_address", Address: "203.0.113.7:40000"},
	})
	request := func() *stun.Message { // SOFTWARE first: the attribute corrupt flips
		return stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware("capture test"))
	}

	a := dial()
	if got := mappedAddress(t, a.exchange(request())).String(); got != "203.0.113.7:40000" {
		t.Fatalf("first Binding: mapped %s, want nat-out's address", got)
	}
	addRule(t, srv, faults.Rule{
		ID: "hold-in", Times: 1,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}, Transports: tcpOnly},
		Action: faults.Action{Type: "delay", Delay: faults.Duration(5 * time.Millisecond)},
	})
	for range 2 { // delayed, then passed
		req := request()
		a.wantSuccess(req, a.exchange(req))
	}
	addRule(t, srv, faults.Rule{
		ID: "cut-in", Times: 1,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}, Transports: tcpOnly},
		Action: faults.Action{Type: "truncate", Length: 24},
	})
	b := dial()
	b.send(request().Raw)
	b.wantClosed() // pion got the cut frame, then the end of the stream

	lines := tsharkFields(t, tshark, getCapture(t, srv, "transport=tcp"),
		"tcp.stream", "frame.protocols", "stun.type", "tcp.analysis.flags", "frame.comment")
	type packet struct{ stream, protos, typ, flags, comment string }
	streams := map[string][]packet{}
	var order []string
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 5 {
			t.Fatalf("tshark line %q: want 5 fields", l)
		}
		p := packet{f[0], f[1], f[2], f[3], f[4]}
		if !strings.Contains(p.protos, ":tcp") || strings.Contains(p.protos, "udp") {
			t.Errorf("packet %q: want TCP only", l)
		}
		if p.flags != "" {
			t.Errorf("packet %q: TCP analysis flags %q, want a clean stream", l, p.flags)
		}
		if strings.Contains(p.comment, "UDP") {
			t.Errorf("packet %q: still shown as UDP", l)
		}
		if streams[p.stream] == nil {
			order = append(order, p.stream)
		}
		streams[p.stream] = append(streams[p.stream], p)
	}
	if len(order) != 2 {
		t.Fatalf("TCP streams %v, want the two connections:\n%s", order, strings.Join(lines, "\n"))
	}
	for _, c := range []struct {
		stream string
		want   []struct{ typ, comment string }
	}{
		{order[0], []struct{ typ, comment string }{
			{"0x0001", "as the client sent it"},
			{"0x0001", "as pion got it after rule corrupt-in: corrupt"},
			{"0x0101", "as pion wrote it"},
			{"0x0101", "as the client got it after rule nat-out: mapped_address"},
			{"0x0001", "rule hold-in: delay"},
			{"0x0101", "passed"},
			{"0x0001", "passed"},
			{"0x0101", "passed"},
		}},
		{order[1], []struct{ typ, comment string }{
			{"0x0001", "as the client sent it"},
			{"", "as pion got it after rule cut-in: truncate"}, // 24 of its bytes: no whole message
		}},
	} {
		got := streams[c.stream]
		if len(got) != len(c.want) {
			t.Errorf("stream %s: %d packets, want %d:\n%s", c.stream, len(got), len(c.want), strings.Join(lines, "\n"))
			continue
		}
		for i, w := range c.want {
			if got[i].typ != w.typ || !strings.Contains(got[i].comment, w.comment) {
				t.Errorf("stream %s packet %d: %s %q, want %s with %q", c.stream, i+1, got[i].typ, got[i].comment, w.typ, w.comment)
			}
		}
	}
}
