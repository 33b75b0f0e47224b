package server_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
)

// bigBinding returns a Binding request of exactly size bytes (a multiple of
// 4, at least 32): a comprehension-optional attribute pads it, so pion
// answers it as a plain Binding, and a FINGERPRINT ends it.
func bigBinding(t *testing.T, size int) *stun.Message {
	t.Helper()
	const overhead = 20 + 4 + 8 // header, padding attribute header, FINGERPRINT
	if size%4 != 0 || size < overhead {
		t.Fatalf("bigBinding(%d): want a multiple of 4, at least %d", size, overhead)
	}
	pad := stun.RawAttribute{Type: 0x8050, Value: make([]byte, size-overhead)}
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest, pad, stun.Fingerprint)
	if len(m.Raw) != size {
		t.Fatalf("bigBinding(%d) built %d bytes", size, len(m.Raw))
	}
	return m
}

// exchange sends req to the server over transport and returns the answer,
// failing the test when none comes within five seconds.
func exchange(t *testing.T, addr, transport string, req *stun.Message) *stun.Message {
	t.Helper()
	c, err := net.Dial(transport, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatalf("sending %d bytes over %s: %v", len(req.Raw), transport, err)
	}
	var raw []byte
	switch transport {
	case "udp":
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to a %d-byte Binding over udp: %v", len(req.Raw), err)
		}
		raw = buf[:n]
	case "tcp":
		hdr := make([]byte, 20)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("no answer to a %d-byte Binding over tcp: %v", len(req.Raw), err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatalf("short answer to a %d-byte Binding over tcp: %v", len(req.Raw), err)
		}
		raw = append(hdr, body...)
	}
	res := &stun.Message{Raw: raw}
	if err := res.Decode(); err != nil {
		t.Fatalf("answer to a %d-byte Binding does not parse: %v", len(req.Raw), err)
	}
	if res.TransactionID != req.TransactionID {
		t.Fatalf("answer to a %d-byte Binding has another transaction id", len(req.Raw))
	}
	return res
}

// TestBigMessages sends Bindings from 1.5 KB up to the largest UDP datagram
// (and the same sizes over TCP), with no rule and with a min_size rule: with
// no rule pion answers each with the client's address, and the size rule
// sees each message's true size.
func TestBigMessages(t *testing.T) {
	sizes := []int{1536, 1700, 4096, 16384, 30720, 61440, 65500}
	const minSize = 1700
	for _, transport := range []string{"udp", "tcp"} {
		for _, withRule := range []bool{false, true} {
			name := fmt.Sprintf("%s/no rule", transport)
			if withRule {
				name = fmt.Sprintf("%s/min_size %d", transport, minSize)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, nil)
				if withRule {
					addRule(t, srv, faults.Rule{
						ID:     "big-403",
						Match:  faults.Match{Methods: []string{"binding"}, MinSize: minSize},
						Action: faults.Action{Type: "error", Code: 403},
					})
				}
				addr := turnAddr(t, srv, transport)
				for _, size := range sizes {
					res := exchange(t, addr, transport, bigBinding(t, size))
					want403 := withRule && size >= minSize
					switch got := errorCode(t, res); {
					case want403 && got != 403:
						t.Errorf("%d bytes: got %v (code %d), want 403 from the size rule", size, res.Type, got)
					case !want403 && res.Type != stun.BindingSuccess:
						t.Errorf("%d bytes: got %v (code %d), want a Binding success", size, res.Type, got)
					case !want403:
						var xor stun.XORMappedAddress
						if err := xor.GetFrom(res); err != nil {
							t.Errorf("%d bytes: success without XOR-MAPPED-ADDRESS: %v", size, err)
						}
					}
				}
				if withRule {
					n := srv.Faults().Journal().Count(faults.Query{Rule: "big-403"})
					if want := countAtLeast(sizes, minSize); n != want {
						t.Errorf("journal: rule fired %d times, want %d", n, want)
					}
				}
			})
		}
	}
}

func countAtLeast(sizes []int, min int) int {
	n := 0
	for _, s := range sizes {
		if s >= min {
			n++
		}
	}
	return n
}
