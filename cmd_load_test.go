package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// TestLoadAgainstARunningServer runs `stunfault load` as a user would
// against `stunfault serve`, in each mode, and checks its summary and its
// final JSON line.
func TestLoadAgainstARunningServer(t *testing.T) {
	b := startRun(t, "-config", writeFile(t, "load.toml", portZeroConfig), "-log-level", "warn")
	tests := []struct {
		name string
		args []string
		n    int
	}{
		{"binding udp", []string{"-s", "4", "-w", "8", "-n", "2000"}, 2000},
		{"binding tcp", []string{"-t", "tcp", "-s", "2", "-w", "16", "-n", "1000"}, 1000},
		{"allocate", []string{"-mode", "allocate", "-s", "2", "-n", "10", "-u", "user", "-p", "pass"}, 10},
		{"channeldata", []string{"-mode", "channeldata", "-s", "2", "-w", "4", "-n", "400", "-u", "user", "-p", "pass"}, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append(append([]string{"load"}, tt.args...), b.stun)
			if err := run(context.Background(), args, &out, &errOut); err != nil {
				t.Fatalf("stunfault %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var res loadgen.STUNResult
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
				t.Fatalf("last line is not the JSON result: %v\n%s", err, out.String())
			}
			if res.Sent != tt.n || res.Answered != tt.n || res.Lost != 0 || res.Invalid != 0 {
				t.Errorf("result %+v, want %d sent and answered, none lost", res, tt.n)
			}
			if !strings.Contains(out.String(), "answered ") || !strings.Contains(out.String(), "latency p50") {
				t.Errorf("no summary for a person:\n%s", out.String())
			}
		})
	}
}

func TestLoadUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"load"}, "a load is always bounded"},
		{[]string{"load", "-n", "1", "192.0.2.1:3478"}, "is not a loopback address"},
		{[]string{"load", "-n", "1", "localhost:3478"}, "want an IP literal"},
		{[]string{"load", "-n", "1", "-mode", "allocate"}, "needs TURN credentials"},
		{[]string{"load", "-n", "1", "-s", "0"}, "-s and -w: want at least 1"},
		{[]string{"load", "-n", "1", "-s", "2000"}, "sockets: want 1 to 1024"},
		{[]string{"load", "-n", "1", "a", "b"}, "at most one ADDRESS"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tt.args, &out, &errOut)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("stunfault %s: %v (status %d), want status 2 and %q", strings.Join(tt.args, " "), err, exitCode(err), tt.want)
		}
		if out.Len() != 0 {
			t.Errorf("stunfault %s sent load anyway: %s", strings.Join(tt.args, " "), out.String())
		}
	}
}
