package server_test

import (
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/internal/stunframe"
)

// TestTCPBatchEdges sends eight Binding requests in one TCP write, so that
// stunfault reads them in one system call and hands pion several in one
// Read, with a rule firing on one of them (the last, or one in the middle).
// What the client gets is what it got when every frame was read alone: the
// answers in the order the rule's action gives, each exactly once.
func TestTCPBatchEdges(t *testing.T) {
	t.Parallel()
	const n = 8
	tests := []struct {
		name   string
		marked int // the request the rule fires on
		action faults.Action
		want   []string // per answer: the request's index and "ok", "403" or "eof"
	}{
		{"error on the last", n - 1, faults.Action{Type: "error", Code: 403},
			[]string{"0 ok", "1 ok", "2 ok", "3 ok", "4 ok", "5 ok", "6 ok", "7 403"}},
		{"error in the middle", 3, faults.Action{Type: "error", Code: 403},
			[]string{"0 ok", "1 ok", "2 ok", "3 403", "4 ok", "5 ok", "6 ok", "7 ok"}},
		{"drop the last", n - 1, faults.Action{Type: "drop"},
			[]string{"0 ok", "1 ok", "2 ok", "3 ok", "4 ok", "5 ok", "6 ok", "eof"}},
		{"duplicate in the middle", 3, faults.Action{Type: "duplicate", Copies: 1},
			[]string{"0 ok", "1 ok", "2 ok", "3 ok", "3 ok", "4 ok", "5 ok", "6 ok", "7 ok"}},
		{"delay in the middle", 3, faults.Action{Type: "delay", Delay: faults.Duration(50 * time.Millisecond)},
			[]string{"0 ok", "1 ok", "2 ok", "4 ok", "5 ok", "6 ok", "7 ok", "3 ok"}},
		{"close in the middle", 3, faults.Action{Type: "close"},
			[]string{"0 ok", "1 ok", "2 ok", "eof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Rules = []faults.Rule{{
				ID:     "marked",
				Match:  faults.Match{Methods: []string{"binding"}, Transports: []string{"tcp"}, Attributes: []faults.AttributeMatch{{Type: "software", Contains: "marked"}}},
				Action: tt.action,
			}}
			srv := startServer(t, &cfg)
			c, err := net.Dial("tcp", turnAddr(t, srv, "tcp"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var batch []byte
			ids := make(map[[stun.TransactionIDSize]byte]int)
			for i := range n {
				sw := "plain"
				if i == tt.marked {
					sw = "marked"
				}
				m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware(sw), stun.Fingerprint)
				ids[m.TransactionID] = i
				batch = append(batch, m.Raw...)
			}
			if _, err := c.Write(batch); err != nil {
				t.Fatal(err)
			}
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var got []string
			fr := stunframe.NewReader(c)
			for len(got) < len(tt.want) {
				if tt.want[len(got)] == "eof" && tt.action.Type == "drop" {
					got = append(got, "eof") // the dropped request's answer never comes: checked below
					break
				}
				f, err := fr.Next()
				if errors.Is(err, io.EOF) || isReset(err) {
					got = append(got, "eof")
					break
				}
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				m := &stun.Message{Raw: slices.Clone(f)}
				if err := m.Decode(); err != nil {
					t.Fatal(err)
				}
				i, ok := ids[m.TransactionID]
				if !ok {
					t.Fatalf("answer to a transaction never sent: %v", m)
				}
				res := "ok"
				if m.Type.Class == stun.ClassErrorResponse {
					res = "403"
				}
				got = append(got, itoa(i)+" "+res)
			}
			if tt.action.Type == "drop" {
				// One more request: its answer is the next thing on the wire.
				last := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
				if _, err := c.Write(last.Raw); err != nil {
					t.Fatal(err)
				}
				f, err := fr.Next()
				if err != nil {
					t.Fatal(err)
				}
				m := &stun.Message{Raw: slices.Clone(f)}
				if err := m.Decode(); err != nil || m.TransactionID != last.TransactionID {
					t.Fatalf("after the dropped request, got %v (%v), want the answer to the next request", m, err)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("answers %v, want %v", got, tt.want)
			}
		})
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// isReset reports whether err is the connection being reset or closed.
func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
