package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCompareRuns runs the comparison as the README tells users to, cut to
// one short round, and checks that every server answered every workload
// with nothing lost.
func TestCompareRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts five servers")
	}
	_, coturnErr := exec.LookPath("turnserver")
	if coturnErr != nil && os.Getenv("CI") == "true" {
		t.Fatal("CI: coturn's turnserver is missing (apt-get install coturn)")
	}
	out, err := exec.Command("go", "run", ".", "-rounds", "1", "-d", "150ms", "-json").Output()
	if err != nil {
		t.Fatalf("go run ./bench/compare: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line is not the result: %v\n%s", err, out)
	}
	for _, w := range workloads {
		for _, server := range w.Servers {
			if server == coturn && coturnErr != nil {
				continue
			}
			f, ok := sum.Figures[w.Name][server]
			if !ok || f.Rate <= 0 {
				t.Errorf("%s against %s: no figure (%+v)", w.Name, server, f)
			}
			if f.Lost != 0 || f.Errors != 0 {
				t.Errorf("%s against %s: %d lost, %d errors", w.Name, server, f.Lost, f.Errors)
			}
		}
	}
	if len(sum.Ratios) < 5 {
		t.Errorf("only %d ratios: %+v", len(sum.Ratios), sum.Ratios)
	}
}
