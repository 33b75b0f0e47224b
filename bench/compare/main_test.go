package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCompareRuns runs the comparison as the README tells users to, cut to
// three short rounds, and checks that every server answered every workload
// with nothing lost, and that each ratio has its per-round interval.
func TestCompareRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts five servers")
	}
	_, coturnErr := exec.LookPath("turnserver")
	if coturnErr != nil && os.Getenv("CI") == "true" {
		t.Fatal("CI: coturn's turnserver is missing (apt-get install coturn)")
	}
	sum := runCompare(t, "-rounds", "3", "-d", "100ms")
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
	for _, q := range sum.Ratios {
		if len(q.Interval) != 2 || q.Interval[0] > q.RoundMedian || q.RoundMedian > q.Interval[1] {
			t.Errorf("%s: per-round median %.2f, interval %v: want the median inside a two-sided interval", q.Name, q.RoundMedian, q.Interval)
		}
	}
}

// TestCompareCallgrind runs the instruction count as the README tells
// users to (go run ./bench/compare -callgrind N), cut to one short run per
// server, and checks that every count is there and plausible: more than
// the few hundred instructions a Binding's parsing alone takes, less than
// ten times what one costs; and the code footprint of each server.
func TestCompareCallgrind(t *testing.T) {
	if testing.Short() {
		t.Skip("runs eight servers under valgrind")
	}
	if _, err := exec.LookPath("valgrind"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI: valgrind is missing (apt-get install valgrind)")
		}
		t.Skip("valgrind is not installed (apt-get install valgrind)")
	}
	sum := runCompare(t, "-only", "ping-pong", "-rounds", "1", "-d", "100ms", "-callgrind", "300", "-callgrind-runs", "1")
	in := sum.Instructions
	if in == nil {
		t.Fatalf("no instruction counts in %+v", sum)
	}
	for name, c := range map[string]counts{"one at a time": in.OneAtATime, "16x4": in.Loaded} {
		for server, v := range map[string]float64{"pion": c.Pion, "stunfault": c.Stunfault, "stunfault+100rules": c.Stunfault100, "trace off": c.Stunfault100NoTrace} {
			if v < 1000 || v > 100000 {
				t.Errorf("%s, %s: %.0f instructions per Binding", name, server, v)
			}
		}
	}
	// The code a Binding runs: more than a few KB (pion's Binding alone),
	// less than the few hundred KB of the whole binary's hot code.
	fp := in.Footprint
	if fp == nil {
		t.Fatal("no code footprint")
	}
	for _, s := range footprintServers {
		if kb := fp.CodeKB[s.name]; kb < 4 || kb > 200 {
			t.Errorf("%s: %.1f KB of code every Binding", s.name, kb)
		}
		if m := fp.I1Misses[s.name]; m < 0 || m > 5000 {
			t.Errorf("%s: %.0f instruction-cache misses per Binding", s.name, m)
		}
	}
	var ratios int
	for _, r := range sum.Ratios {
		if strings.HasPrefix(r.Name, "callgrind") {
			ratios++
		}
	}
	if ratios != 2 {
		t.Errorf("%d callgrind ratios, want 2: %+v", ratios, sum.Ratios)
	}
}

// runCompare runs go run ./bench/compare with args and -json, and returns
// the result its last line holds.
func runCompare(t *testing.T, args ...string) summary {
	t.Helper()
	out, err := exec.Command("go", append([]string{"run", ".", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go run ./bench/compare %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line is not the result: %v\n%s", err, out)
	}
	return sum
}

func TestChoose(t *testing.T) {
	tests := []struct {
		only string
		want []string // workload names; nil: an error
	}{
		{"", []string{"udp binding 16x4", "tcp binding 4x16", "udp channeldata 4x8", "udp ping-pong 1x1"}},
		{"ping-pong", []string{"udp ping-pong 1x1"}},
		{"channeldata,ping-pong", []string{"udp channeldata 4x8", "udp ping-pong 1x1"}},
		{"ping-pong, tcp", []string{"tcp binding 4x16", "udp ping-pong 1x1"}}, // in the comparison's order
		{"binding", []string{"udp binding 16x4", "tcp binding 4x16"}},
		{"sctp", nil},
	}
	for _, tt := range tests {
		got, err := choose(tt.only)
		if tt.want == nil {
			if err == nil || !strings.Contains(err.Error(), `-only "sctp"`) {
				t.Errorf("choose(%q): %v, want an error naming -only", tt.only, err)
			}
			continue
		}
		var names []string
		for _, w := range got {
			names = append(names, w.Name)
		}
		if err != nil || strings.Join(names, "|") != strings.Join(tt.want, "|") {
			t.Errorf("choose(%q) = %q, %v; want %q", tt.only, names, err, tt.want)
		}
	}
}
