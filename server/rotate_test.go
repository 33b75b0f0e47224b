package server_test

import (
	"context"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server/control"
)

// After nonces.rotate, a client's next signed request gets 438 with a fresh
// NONCE; its retry with that nonce succeeds, and so does the one after.
func TestRotateNonces(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	raw := newRawTURN(t, srv, "udp")
	if m := raw.allocate("user", "pass", 17); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate: code %d", errorCodeOf(m))
	}
	if n, err := c.RotateNonces(context.Background()); err != nil || n != 1 {
		t.Fatalf("nonces.rotate = %d, %v; want rotation 1", n, err)
	}
	refresh := stun.NewType(stun.MethodRefresh, stun.ClassRequest)
	// A 438 carries no MESSAGE-INTEGRITY (RFC 8489 §9.2.4): not raw.signed's check.
	m := raw.do(stun.TransactionID, refresh, &raw.user, &raw.realm, &raw.nonce, raw.mi, stun.Fingerprint)
	if errorCodeOf(m) != 438 {
		t.Fatalf("first Refresh after rotation: code %d, want 438", errorCodeOf(m))
	}
	// pion's nonce, issued after the rotation (pion's nonces are HMACs of
	// the time: within one second it may equal the old one).
	if err := raw.nonce.GetFrom(m); err != nil {
		t.Fatalf("438 carries no NONCE: %v", err)
	}
	for i := range 2 {
		if m := raw.signed(refresh); m.Type.Class != stun.ClassSuccessResponse {
			t.Fatalf("Refresh %d with the fresh nonce: code %d, want success", i+1, errorCodeOf(m))
		}
	}
}

// connections.close closes a TCP client's connection: its allocation ends.
func TestCloseConnection(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	raw := newRawTURN(t, srv, "tcp")
	if m := raw.allocate("user", "pass", 17); m.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("Allocate: code %d", errorCodeOf(m))
	}
	client := raw.conn.LocalAddr().String()
	if err := c.CloseConnection(context.Background(), client); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := raw.conn.Read(buf); err == nil {
		t.Fatalf("read %d bytes after connections.close, want EOF", n)
	}
	if err := c.CloseConnection(context.Background(), "127.0.0.1:1"); control.ErrorCode(err) != control.CodeUnknownAllocation {
		t.Errorf("close unknown client: %v, want unknown_allocation", err)
	}
	if err := c.CloseConnection(context.Background(), "nope"); control.ErrorCode(err) != control.CodeBadRequest {
		t.Errorf("close bad address: %v, want bad_request", err)
	}
}
