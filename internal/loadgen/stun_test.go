package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/internal/loadgen"
	"github.com/stunfault/stunfault/server/servertest"
)

func startServer(t *testing.T) *servertest.Server {
	t.Helper()
	return servertest.New(t)
}

func target(t *testing.T, srv *servertest.Server, transport string) string {
	t.Helper()
	a := srv.TURNAddr(transport)
	if !a.IsValid() {
		t.Fatalf("no %s listener", transport)
	}
	return a.String()
}

// TestSTUNLoad runs each mode against a real server and checks that every
// transaction was answered and validated.
func TestSTUNLoad(t *testing.T) {
	tests := []struct {
		mode, transport string
		sockets, window int
		count           int
	}{
		{loadgen.ModeBinding, "udp", 4, 8, 2000},
		{loadgen.ModeBinding, "tcp", 2, 16, 2000},
		{loadgen.ModeAllocate, "udp", 2, 1, 20},
		{loadgen.ModeAllocate, "tcp", 2, 1, 10},
		{loadgen.ModeChannelData, "udp", 2, 8, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.transport, func(t *testing.T) {
			srv := startServer(t)
			res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{
				Target: target(t, srv, tt.transport), Transport: tt.transport, Mode: tt.mode,
				Sockets: tt.sockets, Window: tt.window, Count: tt.count, Duration: 30 * time.Second,
				Username: "user", Password: "pass",
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != tt.count || res.Answered != tt.count || res.Lost != 0 || res.Invalid != 0 || len(res.Errors) != 0 {
				t.Fatalf("got %+v, want %d sent and answered, none lost, invalid or errors", res, tt.count)
			}
			if res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 || res.Rate() <= 0 {
				t.Errorf("latency %+v, rate %.0f/s: want positive, ordered figures", res.Latency, res.Rate())
			}
		})
	}
}

// TestSTUNLoadCountsInjectedErrors checks that an injected 403 is counted
// by code, and that dropped requests are counted as lost.
func TestSTUNLoadCountsInjectedErrors(t *testing.T) {
	srv := startServer(t)
	srv.AddRule(t, faults.Rule{ID: "403", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}})
	res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{Target: target(t, srv, "udp"), Sockets: 2, Window: 4, Count: 500})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != 500 || res.Errors["403"] != 500 {
		t.Fatalf("got %+v, want 500 answers, all 403", res)
	}

	srv2 := startServer(t)
	srv2.AddRule(t, faults.Rule{ID: "drop", Every: 2, Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}})
	res, err = loadgen.RunSTUN(context.Background(), loadgen.STUN{Target: target(t, srv2, "udp"), Window: 4, Count: 100, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Lost != 50 || res.Answered != 50 {
		t.Fatalf("got %+v, want every second request lost: 50 lost, 50 answered", res)
	}
}

// TestSTUNLoadBoundedByDuration checks that a load with only a duration
// stops by itself.
func TestSTUNLoadBoundedByDuration(t *testing.T) {
	srv := startServer(t)
	done := make(chan loadgen.STUNResult, 1)
	go func() {
		res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{Target: target(t, srv, "udp"), Window: 2, Duration: 200 * time.Millisecond})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res.Answered == 0 || res.Lost != 0 {
			t.Fatalf("got %+v, want answers and none lost", res)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a 200ms load was still running after 30s")
	}
}

func TestSTUNValidate(t *testing.T) {
	tests := []struct {
		name string
		l    loadgen.STUN
		want string
	}{
		{"unbounded", loadgen.STUN{Target: "127.0.0.1:3478"}, "count: set a count, a duration or both"},
		{"a name", loadgen.STUN{Target: "localhost:3478", Count: 1}, "target: want an IP literal"},
		{"remote", loadgen.STUN{Target: "192.0.2.1:3478", Count: 1}, "target: 192.0.2.1:3478 is not a loopback address"},
		{"remote peer", loadgen.STUN{Target: "127.0.0.1:3478", Peer: "192.0.2.1:9", Count: 1}, "peer: 192.0.2.1:9 is not a loopback address"},
		{"transport", loadgen.STUN{Target: "127.0.0.1:3478", Transport: "sctp", Count: 1}, `transport: want udp, tcp or tls, got "sctp"`},
		{"mode", loadgen.STUN{Target: "127.0.0.1:3478", Mode: "ping", Count: 1}, `mode: want binding, allocate or channeldata, got "ping"`},
		{"credentials", loadgen.STUN{Target: "127.0.0.1:3478", Mode: "allocate", Count: 1}, "username: mode allocate needs TURN credentials"},
		{"sockets", loadgen.STUN{Target: "127.0.0.1:3478", Sockets: 5000, Count: 1}, "sockets: want 1 to 1024, got 5000"},
		{"window", loadgen.STUN{Target: "127.0.0.1:3478", Window: -1, Count: 1}, "window: want 1 to 1024, got -1"},
		{"duration", loadgen.STUN{Target: "127.0.0.1:3478", Duration: 2 * time.Hour}, "duration: want 0 to 1h0m0s, got 2h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := loadgen.RunSTUN(context.Background(), tt.l); err == nil {
				t.Fatal("RunSTUN ran an invalid load")
			}
		})
	}
}
