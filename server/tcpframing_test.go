package server_test

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/faults"
)

// TestTCPRetransmissionAnswersAreFramedApart sends a Binding request and
// its retransmission in one TCP write, as a client that retransmits over
// TCP does when the server is slow, then a request a rule closes the
// connection on, so the whole stream arrives by the close: the two answers,
// whether written in one batch (no rule) or each by a rule firing on it
// (mapped_address), are each one whole message with a valid FINGERPRINT,
// back to back. And pion's stun.Client, reading through the tests' framer
// (stunStream), gets the first of them whole even when both come in one
// read (without the framer it decoded both as one message, and the
// FINGERPRINT check failed).
func TestTCPRetransmissionAnswersAreFramedApart(t *testing.T) {
	t.Parallel()
	const nat = "203.0.113.7:40000"
	tests := []struct {
		name   string
		rules  []faults.Rule
		mapped string // the answers' XOR-MAPPED-ADDRESS; "" for the client's own
	}{
		{name: "batched"},
		{name: "rewritten", mapped: nat, rules: []faults.Rule{{
			ID:     "nat",
			Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"success"}, Direction: "out"},
			Action: faults.Action{Type: "mapped_address", Address: nat},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Rules = append(slices.Clone(tt.rules), faults.Rule{
				ID:     "hangup",
				Match:  faults.Match{Methods: []string{"binding"}, Direction: "in", Transports: []string{"tcp"}, Attributes: []faults.AttributeMatch{{Type: "software", Contains: "hangup"}}},
				Action: faults.Action{Type: "close"},
			})
			srv := startServer(t, &cfg)
			c, err := net.Dial("tcp", turnAddr(t, srv, "tcp"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			want := tt.mapped
			if want == "" {
				want = c.LocalAddr().String()
			}
			req := bindingRequest()
			hangup := bindingRequest(stun.NewSoftware("hangup"))
			if _, err := c.Write(append(append(append([]byte(nil), req.Raw...), req.Raw...), hangup.Raw...)); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(arrive))
			stream, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatalf("after %d bytes: %v, want the answers and the close", len(stream), err)
			}

			var answers [][]byte
			for rest := stream; len(rest) > 0; {
				if len(rest) < 20 {
					t.Fatalf("stream ends in a %d-byte piece of a header after %d answers", len(rest), len(answers))
				}
				size := 20 + int(binary.BigEndian.Uint16(rest[2:4]))
				if size > len(rest) {
					t.Fatalf("answer %d announces %d bytes, %d follow", len(answers), size, len(rest))
				}
				answers = append(answers, rest[:size])
				rest = rest[size:]
			}
			if len(answers) != 2 {
				t.Fatalf("got %d answers, want 2 (one per copy of the request)", len(answers))
			}
			for i, a := range answers {
				m := &stun.Message{Raw: a}
				if err := m.Decode(); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				if err := stun.Fingerprint.Check(m); err != nil {
					t.Errorf("answer %d: FINGERPRINT: %v", i, err)
				}
				if m.TransactionID != req.TransactionID {
					t.Errorf("answer %d to transaction %x, want %x", i, m.TransactionID, req.TransactionID)
				}
				if got := mappedAddress(t, m).String(); got != want {
					t.Errorf("answer %d: XOR-MAPPED-ADDRESS = %s, want %s", i, got, want)
				}
			}

			// Both answers in one read, as a slow client's socket holds
			// them, through the framer newSTUNClient uses.
			client, server := net.Pipe()
			defer server.Close()
			go func() {
				buf := make([]byte, 1500)
				if _, err := server.Read(buf); err != nil { // the client's request
					return
				}
				_, _ = server.Write(stream)
			}()
			sc, err := stun.NewClient(stunStream{turn.NewSTUNConn(client)}, stun.WithNoRetransmit, stun.WithRTO(arrive))
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			var res stun.Message
			var resErr error
			if err := sc.Do(req, func(e stun.Event) {
				if resErr = e.Error; resErr == nil {
					resErr = e.Message.CloneTo(&res)
				}
			}); err != nil {
				t.Fatal(err)
			}
			if resErr != nil {
				t.Fatalf("stun.Client: %v", resErr)
			}
			if err := stun.Fingerprint.Check(&res); err != nil || len(res.Raw) != len(answers[0]) {
				t.Errorf("stun.Client got %d bytes (FINGERPRINT: %v), want the first answer's %d", len(res.Raw), err, len(answers[0]))
			}
			if got := mappedAddress(t, &res); got != netip.MustParseAddrPort(want) {
				t.Errorf("stun.Client: XOR-MAPPED-ADDRESS = %s, want %s", got, want)
			}
		})
	}
}
