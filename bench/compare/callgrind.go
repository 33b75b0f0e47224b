package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// instructions are callgrind's user-space instruction counts per Binding,
// the median of several runs, for two shapes of load.
type instructions struct {
	Bindings int `json:"bindings"`
	Runs     int `json:"runs"`
	// OneAtATime: one socket, one Binding outstanding. Between Bindings
	// the server idles, and the Go scheduler's polling while it waits
	// (netpoll, findRunnable) counts too: it varies with how long the
	// client takes, so these vary most between runs.
	OneAtATime counts `json:"one_at_a_time"`
	// Loaded: 16 sockets with 4 Bindings outstanding each, as the
	// throughput workload; under valgrind the server never waits.
	Loaded counts `json:"loaded_16x4"`
	// Footprint is the code one Binding at a time runs (footprint.go);
	// nil when it could not be measured.
	Footprint *footprint `json:"footprint,omitempty"`
}

// counts are instructions per Binding for each server of the comparison.
type counts struct {
	Pion         float64 `json:"pion"`
	Stunfault    float64 `json:"stunfault"`
	Stunfault100 float64 `json:"stunfault_100_rules"`
	// Stunfault100NoTrace is Stunfault100 with the trace off
	// ([server].trace_size 0): the difference is what the trace costs.
	Stunfault100NoTrace float64 `json:"stunfault_100_rules_trace_off"`
	// Spread is the widest (max - min) / median over the runs of any one
	// server's count: how far one run may be from another.
	Spread float64 `json:"spread"`
}

var collected = regexp.MustCompile(`Collected : (\d+)`)

// callgrindServers are the servers counted, as bench/server flags, in the
// order the runs interleave them.
var callgrindServers = []struct {
	args []string
	pick func(*counts) *float64
}{
	{[]string{"-kind", "pion"}, func(c *counts) *float64 { return &c.Pion }},
	{[]string{"-kind", "stunfault", "-read-loops", "1"}, func(c *counts) *float64 { return &c.Stunfault }},
	{[]string{"-kind", "stunfault", "-read-loops", "1", "-rules", "100"}, func(c *counts) *float64 { return &c.Stunfault100 }},
	{[]string{"-kind", "stunfault", "-read-loops", "1", "-rules", "100", "-trace", "0"}, func(c *counts) *float64 { return &c.Stunfault100NoTrace }},
}

// countInstructions runs bench/server under callgrind, once answering n
// Bindings and once 2n, and takes the difference per Binding, so start-up,
// warming up (the first Bindings' caches and maps) and shut-down cancel
// out; it does that runs times for each
// server and each shape of load, interleaved, and keeps the medians (see
// underValgrind). stunfault runs one read loop, as bare pion has one
// socket.
func countInstructions(bin string, n, runs int) (*instructions, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return nil, fmt.Errorf("valgrind is not installed (apt-get install valgrind)")
	}
	count := func(load loadgen.STUN, args []string) (float64, error) {
		stderr, err := underValgrind(bin, args, load, "--tool=callgrind", "--callgrind-out-file=/dev/null")
		if err != nil {
			return 0, err
		}
		m := collected.FindSubmatch(stderr)
		if m == nil {
			return 0, fmt.Errorf("no instruction count in valgrind's output: %.500s", stderr)
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	per := func(load loadgen.STUN, args []string) (float64, error) {
		first, err := count(load, args)
		if err != nil {
			return 0, err
		}
		n := load.Count
		load.Count *= 2
		twice, err := count(load, args)
		if err != nil {
			return 0, err
		}
		return (twice - first) / float64(n), nil
	}
	shapes := []struct {
		load loadgen.STUN
		into *counts
	}{
		{loadgen.STUN{Count: n, Sockets: 1, Window: 1}, nil},
		{loadgen.STUN{Count: n, Sockets: 16, Window: 4}, nil},
	}
	in := &instructions{Bindings: n, Runs: runs}
	shapes[0].into, shapes[1].into = &in.OneAtATime, &in.Loaded
	type key struct {
		shape *counts
		count *float64
	}
	samples := map[key][]float64{}
	for r := range runs {
		for _, sh := range shapes {
			order := slices.Clone(callgrindServers)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				v, err := per(sh.load, s.args)
				if err != nil {
					return nil, fmt.Errorf("%v: %w", s.args, err)
				}
				k := key{sh.into, s.pick(sh.into)}
				samples[k] = append(samples[k], v)
			}
		}
	}
	for k, xs := range samples {
		*k.count = median(xs)
		k.shape.Spread = max(k.shape.Spread, (slices.Max(xs)-slices.Min(xs))/median(xs))
	}
	return in, nil
}
