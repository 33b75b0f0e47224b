// Command compare measures stunfault against bare pion/turn v5 and coturn on
// loopback, in one interleaved run, and prints medians and ratios.
//
//	go run ./bench/compare                  # 5 rounds of 2 s per workload and server
//	go run ./bench/compare -rounds 9 -d 3s  # longer
//	go run ./bench/compare -callgrind 2000  # also instructions per Binding (needs valgrind)
//	go run ./bench/compare -only ping-pong  # one workload
//
// Servers: bench/server -kind pion (bare pion, one UDP socket),
// bench/server -kind stunfault with no rules (read_loops per CPU, the
// default), with one read loop, with 100 rules that never match a Binding,
// and with every Binding answered 403, and coturn's turnserver when it is
// installed. Each
// runs on free loopback ports. Each workload is run against each server in
// turn, in the order A B C in odd rounds and C B A in even ones, so drift in
// the machine's speed cancels out; the figures are the medians over rounds.
// The load is internal/loadgen, the generator `stunfault load` runs, in this
// process, sharing the machine's cores with the servers.
//
// Every load is bounded by its duration and sends only to loopback.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// workload is one row of the comparison.
type workload struct {
	Name            string
	Transport, Mode string
	Sockets, Window int
	// Servers are the servers this workload runs against.
	Servers []string
}

// The servers (see bench/server and coturn.go).
const (
	pion         = "pion"
	stunfault    = "stunfault"
	stunfault100 = "stunfault+100rules"
	stunfault403 = "stunfault+403"
	stunfault1   = "stunfault+1loop" // read_loops = 1: one UDP socket, as bare pion
	coturn       = "coturn"
)

var workloads = []workload{
	{"udp binding 16x4", "udp", loadgen.ModeBinding, 16, 4, []string{pion, stunfault, stunfault1, stunfault100, stunfault403, coturn}},
	{"tcp binding 4x16", "tcp", loadgen.ModeBinding, 4, 16, []string{pion, stunfault, coturn}},
	{"udp channeldata 4x8", "udp", loadgen.ModeChannelData, 4, 8, []string{pion, stunfault, stunfault1, coturn}},
	{"udp ping-pong 1x1", "udp", loadgen.ModeBinding, 1, 1, []string{pion, stunfault, stunfault1, coturn}},
}

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds (1 to 50)")
	d := flag.Duration("d", 2*time.Second, "duration of one load (100ms to 1m)")
	callgrind := flag.Int("callgrind", 0, "also count instructions per Binding under valgrind's callgrind, with this many Bindings (0 = skip; at most 100000)")
	callgrindRuns := flag.Int("callgrind-runs", 3, "callgrind runs per server and load, of which the median counts (1 to 9)")
	jsonOut := flag.Bool("json", false, "print only the machine-readable result line")
	only := flag.String("only", "", "run only the workloads whose name contains this, or one of these comma-separated parts (udp binding, tcp binding, channeldata, ping-pong)")
	flag.Parse()
	if err := run(*rounds, *d, *callgrind, *callgrindRuns, *jsonOut, *only); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// choose returns the workloads whose name contains only, or one of its
// comma-separated parts, in the order of workloads; all for "".
func choose(only string) ([]workload, error) {
	var chosen []workload
	for _, w := range workloads {
		for _, part := range strings.Split(only, ",") {
			if strings.Contains(w.Name, strings.TrimSpace(part)) {
				chosen = append(chosen, w)
				break
			}
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("-only %q: no workload's name has it (the names: udp binding 16x4, tcp binding 4x16, udp channeldata 4x8, udp ping-pong 1x1)", only)
	}
	return chosen, nil
}

func run(rounds int, d time.Duration, callgrind, callgrindRuns int, jsonOut bool, only string) error {
	if rounds < 1 || rounds > 50 {
		return fmt.Errorf("-rounds: want 1 to 50, got %d", rounds)
	}
	if d < 100*time.Millisecond || d > time.Minute {
		return fmt.Errorf("-d: want 100ms to 1m, got %v", d)
	}
	if callgrind < 0 || callgrind > 100000 {
		return fmt.Errorf("-callgrind: want 0 to 100000 Bindings, got %d", callgrind)
	}
	if callgrindRuns < 1 || callgrindRuns > 9 {
		return fmt.Errorf("-callgrind-runs: want 1 to 9, got %d", callgrindRuns)
	}
	chosen, err := choose(only)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "stunfault-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	bin := filepath.Join(dir, "server")
	build := exec.Command("go", "build", "-o", bin, "github.com/stunfault/stunfault/bench/server")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building bench/server (run inside the stunfault module): %w", err)
	}

	servers := map[string]*proc{}
	defer func() {
		for _, p := range servers {
			p.stop()
		}
	}()
	for name, args := range map[string][]string{
		pion:         {"-kind", "pion"},
		stunfault:    {"-kind", "stunfault"},
		stunfault100: {"-kind", "stunfault", "-rules", "100"},
		stunfault403: {"-kind", "stunfault", "-inject", "403"},
		stunfault1:   {"-kind", "stunfault", "-read-loops", "1"},
	} {
		p, err := startBenchServer(bin, args...)
		if err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		servers[name] = p
	}
	if p, err := startCoturn(dir); err != nil {
		if !jsonOut {
			fmt.Fprintf(os.Stderr, "compare: coturn left out: %v\n", err)
		}
	} else {
		servers[coturn] = p
	}

	res := newResults()
	for r := range rounds {
		for _, w := range chosen {
			order := slices.Clone(w.Servers)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, name := range order {
				p, ok := servers[name]
				if !ok {
					continue
				}
				cpu0, cpuErr := cpuTime(p.cmd.Process.Pid)
				got, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{
					Target: p.addr(w.Transport), Transport: w.Transport, Mode: w.Mode,
					Sockets: w.Sockets, Window: w.Window, Duration: d,
					Username: "user", Password: "pass",
				})
				if err != nil {
					return fmt.Errorf("%s against %s: %w", w.Name, name, err)
				}
				var cpu time.Duration
				if cpu1, err := cpuTime(p.cmd.Process.Pid); err == nil && cpuErr == nil {
					cpu = cpu1 - cpu0
				}
				res.add(w.Name, name, got, cpu)
			}
		}
		if !jsonOut {
			fmt.Fprintf(os.Stderr, "round %d of %d done\n", r+1, rounds)
		}
	}
	if callgrind > 0 {
		ins, err := countInstructions(bin, callgrind, callgrindRuns)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compare: callgrind left out: %v\n", err)
		} else {
			res.Instructions = ins
			if ins.Footprint, err = measureFootprint(bin, callgrind); err != nil {
				fmt.Fprintf(os.Stderr, "compare: code footprint left out: %v\n", err)
			}
		}
	}
	sum := res.summary()
	if !jsonOut {
		res.print(os.Stdout, sum, rounds, d)
	}
	line, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	fmt.Println(string(line))
	return nil
}
