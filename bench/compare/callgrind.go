package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// instructions are callgrind's user-space instruction counts per Binding.
type instructions struct {
	Bindings     int     `json:"bindings"`
	Pion         float64 `json:"pion"`
	Stunfault    float64 `json:"stunfault"`
	Stunfault100 float64 `json:"stunfault_100_rules"`
	// Stunfault100NoTrace is Stunfault100 with the trace off
	// ([server].trace_size 0): the difference is what the trace costs.
	Stunfault100NoTrace float64 `json:"stunfault_100_rules_trace_off"`
}

var collected = regexp.MustCompile(`Collected : (\d+)`)

// countInstructions runs bench/server under callgrind twice per server, once
// answering no Binding and once answering n, one at a time, and returns the
// difference per Binding: start-up and shut-down cancel out. Go under
// valgrind needs GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1, and the process
// must exit without a signal (bench/server exits when its stdin closes).
func countInstructions(bin string, n int) (*instructions, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return nil, fmt.Errorf("valgrind is not installed (apt-get install valgrind)")
	}
	count := func(bindings int, args ...string) (float64, error) {
		var stderr bytes.Buffer
		cmd := exec.Command("valgrind", append([]string{"--tool=callgrind", "--callgrind-out-file=/dev/null", bin}, args...)...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1")
		cmd.Stderr = &stderr
		p, err := startBenchServer2(cmd)
		if err != nil {
			return 0, err
		}
		if bindings > 0 {
			res, err := loadgen.RunSTUN(context.Background(), loadgen.STUN{Target: p.udp, Count: bindings, Timeout: 5e9})
			if err != nil || res.Answered != bindings {
				p.stop()
				return 0, fmt.Errorf("%d Bindings under valgrind: %+v, %v", bindings, res, err)
			}
		}
		p.stop()
		m := collected.FindSubmatch(stderr.Bytes())
		if m == nil {
			return 0, fmt.Errorf("no instruction count in valgrind's output: %.500s", stderr.String())
		}
		return strconv.ParseFloat(string(m[1]), 64)
	}
	per := func(args ...string) (float64, error) {
		idle, err := count(0, args...)
		if err != nil {
			return 0, err
		}
		busy, err := count(n, args...)
		if err != nil {
			return 0, err
		}
		return (busy - idle) / float64(n), nil
	}
	in := &instructions{Bindings: n}
	var err error
	if in.Pion, err = per("-kind", "pion"); err != nil {
		return nil, err
	}
	if in.Stunfault, err = per("-kind", "stunfault"); err != nil {
		return nil, err
	}
	if in.Stunfault100, err = per("-kind", "stunfault", "-rules", "100"); err != nil {
		return nil, err
	}
	if in.Stunfault100NoTrace, err = per("-kind", "stunfault", "-rules", "100", "-trace", "0"); err != nil {
		return nil, err
	}
	return in, nil
}
