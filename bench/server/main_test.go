package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// TestCPUProfile runs the README's `go run ./bench/server -kind pion
// -cpuprofile pion.pprof`, has it answer a Binding, closes its standard
// input (its way to stop), and checks that it exited cleanly and left a
// profile pprof reads: gzip, as runtime/pprof writes it.
func TestCPUProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs bench/server")
	}
	for _, kind := range []string{"pion", "stunfault"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), kind+".pprof")
			cmd := exec.Command("go", "run", ".", "-kind", kind, "-cpuprofile", path)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("no ready line: %v (stderr: %s)", err, stderr.String())
			}
			var addrs struct{ UDP string }
			if err := json.Unmarshal([]byte(line), &addrs); err != nil {
				_ = cmd.Process.Kill()
				t.Fatalf("ready line %q: %v", line, err)
			}
			res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{Target: addrs.UDP, Count: 1, Timeout: 5 * time.Second})
			if err != nil || res.Answered != 1 || len(res.Errors) != 0 || res.Invalid != 0 {
				t.Fatalf("one Binding: %+v, %v; want one success (the generator checks the answer)", res, err)
			}
			_ = stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("bench/server did not exit cleanly: %v (stderr: %s)", err, stderr.String())
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Fatalf("%s: %d bytes, not a gzipped pprof profile", path, len(b))
			}
		})
	}
}
