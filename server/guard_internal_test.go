package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
)

// flakyListener fails its first Accepts with the errors in fail, then
// accepts from the real listener beneath.
type flakyListener struct {
	net.Listener
	fail  []error
	calls atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if i := int(l.calls.Add(1)) - 1; i < len(l.fail) {
		return nil, l.fail[i]
	}
	return l.Listener.Accept()
}

// acceptErr is the error net.TCPListener.Accept returns for errno.
func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// Temporary accept errors (out of descriptors, a connection aborted) are
// retried with backoff and the listener keeps accepting; any other error
// ends it, and the listener reports why.
func TestGuardAcceptErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("accept: something broke for good")
	for _, tc := range []struct {
		name     string
		fail     []error
		wantConn bool
	}{
		{"EMFILE three times", []error{acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE), acceptErr(syscall.EMFILE)}, true},
		{"ENFILE then ECONNABORTED", []error{acceptErr(syscall.ENFILE), acceptErr(syscall.ECONNABORTED)}, true},
		{"permanent", []error{boom}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			fl := &flakyListener{Listener: raw, fail: tc.fail}
			g := newGuardListener(fl, Listener{Transport: "tcp", Addr: addrPort(raw.Addr())},
				tcpLimits{maxConns: 10}, newAllocWatch(), slog.New(slog.DiscardHandler))
			defer g.Close()
			type accepted struct {
				c   net.Conn
				err error
			}
			got := make(chan accepted, 1)
			go func() {
				c, err := g.Accept()
				got <- accepted{c, err}
			}()
			client, err := net.Dial("tcp", raw.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			var a accepted
			select {
			case a = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("Accept did not return within 10s")
			}
			if !tc.wantConn {
				if a.err == nil || !errors.Is(g.failure(), boom) {
					t.Fatalf("Accept = %v, %v; failure() = %v; want the error, reported", a.c, a.err, g.failure())
				}
				return
			}
			if a.err != nil {
				t.Fatalf("Accept: %v, want a connection after %d retries", a.err, len(tc.fail))
			}
			defer a.c.Close()
			if n := int(fl.calls.Load()); n != len(tc.fail)+1 {
				t.Errorf("the real Accept was reached after %d calls, want %d", n, len(tc.fail)+1)
			}
			if err := g.failure(); err != nil {
				t.Errorf("failure() = %v after recovering, want nil", err)
			}
			// The accepted connection is the client's.
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			_ = a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := a.c.Read(b); err != nil || b[0] != 'x' {
				t.Errorf("reading the accepted connection: %q %v", b, err)
			}
		})
	}
}

// Close during the backoff ends Accept at once, as closed, not failed.
func TestGuardCloseDuringBackoff(t *testing.T) {
	t.Parallel()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fails := make([]error, 100) // backoff reaches its 1 s cap
	for i := range fails {
		fails[i] = acceptErr(syscall.EMFILE)
	}
	fl := &flakyListener{Listener: raw, fail: fails}
	g := newGuardListener(fl, Listener{Transport: "tcp", Addr: addrPort(raw.Addr())},
		tcpLimits{maxConns: 10}, newAllocWatch(), slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() {
		_, err := g.Accept()
		done <- err
	}()
	_ = g.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after Close returned a connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if err := g.failure(); err != nil {
		t.Errorf("failure() = %v after Close, want nil", err)
	}
}

// A listener that dies (its socket gone behind pion's back) makes /healthz
// answer 503, naming it once: a udp listener's two read loops die both.
func TestHealthzNamesADeadListener(t *testing.T) {
	t.Parallel()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Listen = []config.Listener{{Transport: "udp", Address: "127.0.0.1:0"}, {Transport: "tcp", Address: "127.0.0.1:0"}}
			cfg.HTTP.Address = "127.0.0.1:0"
			cfg.Server.ReadLoops = 2
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			get := func() (int, healthz) {
				t.Helper()
				resp, err := http.Get(s.HTTPURL() + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var h healthz
				if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
					t.Fatal(err)
				}
				return resp.StatusCode, h
			}
			if code, h := get(); code != http.StatusOK || h.Status != "ok" || len(h.Failed) != 0 {
				t.Fatalf("healthy: got %d %+v, want 200 ok", code, h)
			}

			addr := s.TURNAddr(transport).String()
			var failed []<-chan struct{}
			for _, g := range s.guarded {
				switch g := g.(type) {
				case *guardListener:
					if transport == "tcp" {
						_ = g.Listener.Close() // the socket, not the guard: not a Close
						failed = append(failed, g.failed)
					}
				case *udpGuard:
					if transport == "udp" {
						_ = g.PacketConn.Close()
						failed = append(failed, g.failed)
					}
				}
			}
			if want := map[string]int{"udp": 2, "tcp": 1}[transport]; len(failed) != want {
				t.Fatalf("%d guards of the %s listener, want %d", len(failed), transport, want)
			}
			for _, f := range failed {
				select { // pion's loop sees the error at once
				case <-f:
				case <-time.After(10 * time.Second):
					t.Fatal("the guard did not see its socket die")
				}
			}
			code, h := get()
			if code != http.StatusServiceUnavailable || h.Status != "failing" || len(h.Failed) != 1 {
				t.Fatalf("dead listener: got %d %+v, want 503 failing with one failed listener", code, h)
			}
			if f := h.Failed[0]; f.Transport != transport || f.Address != addr || !strings.Contains(f.Error, "closed") {
				t.Errorf("failed listener: got %+v, want %s %s with its error", f, transport, addr)
			}
		})
	}
}

// flakyPacketConn fails its first reads with the errors in fail.
type flakyPacketConn struct {
	net.PacketConn
	fail  []error
	calls atomic.Int32
}

func (c *flakyPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if i := int(c.calls.Add(1)) - 1; i < len(c.fail) {
		return 0, nil, c.fail[i]
	}
	return c.PacketConn.ReadFrom(p)
}

// A temporary read error on a udp listener is retried, a timeout (the
// interception's own wake-up) is passed up at once, and any other error
// ends the listener, reported.
func TestUDPGuardReadErrors(t *testing.T) {
	t.Parallel()
	readErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
	}
	boom := errors.New("read: something broke for good")
	for _, tc := range []struct {
		name    string
		fail    []error
		wantErr error // nil: the datagram arrives
	}{
		{"ENOBUFS twice", []error{readErr(syscall.ENOBUFS), readErr(syscall.ENOBUFS)}, nil},
		{"timeout", []error{os.ErrDeadlineExceeded}, os.ErrDeadlineExceeded},
		{"permanent", []error{boom}, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			g := newUDPGuard(&flakyPacketConn{PacketConn: raw, fail: tc.fail},
				Listener{Transport: "udp", Addr: addrPort(raw.LocalAddr())}, slog.New(slog.DiscardHandler))
			defer g.Close()
			client, err := net.Dial("udp", raw.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if _, err := client.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 10)
			n, _, err := g.ReadFrom(buf)
			switch {
			case tc.wantErr == nil && (err != nil || string(buf[:n]) != "x"):
				t.Fatalf("ReadFrom = %q, %v; want the datagram after the retries", buf[:n], err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("ReadFrom error %v, want %v", err, tc.wantErr)
			}
			if failed := g.failure() != nil; failed != (tc.wantErr == boom) {
				t.Errorf("failure() = %v", g.failure())
			}
		})
	}
}
