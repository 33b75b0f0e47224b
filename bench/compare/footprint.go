package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// footprint is how much code one Binding at a time runs, per server: the
// 64-byte lines of code that run for (nearly) every Binding, from
// callgrind's per-instruction counts, and the instruction-cache misses per
// Binding in cachegrind's simulation of this machine's caches. A path
// larger than the first-level instruction cache (32 KB on this
// repository's machine) is fetched again from the second level for every
// message, which a count of instructions does not show.
type footprint struct {
	// CodeKB is the code every Binding runs, in KB (lines run at least
	// 0.9 times per Binding).
	CodeKB map[string]float64 `json:"code_kb_every_binding"`
	// I1Misses is cachegrind's first-level instruction-cache misses per
	// Binding.
	I1Misses map[string]float64 `json:"i1_misses_per_binding"`
}

// hotShare is how often per Binding a line of code must run to count as
// run by every Binding: a little under 1, for the odd Binding that takes
// another path (a GC assist, a retransmission).
const hotShare = 0.9

// footprintServers are the servers measured, as bench/server flags.
var footprintServers = []struct {
	name string
	args []string
}{
	{pion, []string{"-kind", "pion"}},
	{stunfault, []string{"-kind", "stunfault", "-read-loops", "1"}},
	{stunfault100, []string{"-kind", "stunfault", "-read-loops", "1", "-rules", "100"}},
}

// measureFootprint runs each server under callgrind (--dump-instr=yes) and
// under cachegrind, answering n Bindings one at a time and then 2n, and
// takes the difference per Binding, as countInstructions does.
func measureFootprint(bin string, n int) (*footprint, error) {
	dir, err := os.MkdirTemp("", "stunfault-footprint-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	fp := &footprint{CodeKB: map[string]float64{}, I1Misses: map[string]float64{}}
	for _, s := range footprintServers {
		var runs [2]map[uint64]uint64
		var misses [2]float64
		for i, count := range []int{n, 2 * n} {
			out := filepath.Join(dir, fmt.Sprintf("%s.%d", strings.ReplaceAll(s.name, "+", "_"), count))
			if _, err := underValgrind(bin, s.args, oneAtATime(count), "--tool=callgrind", "--dump-instr=yes", "--callgrind-out-file="+out); err != nil {
				return nil, fmt.Errorf("%s under callgrind: %w", s.name, err)
			}
			f, err := os.Open(out)
			if err != nil {
				return nil, err
			}
			runs[i], err = instructionCounts(bufio.NewReader(f))
			_ = f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: callgrind's output: %w", s.name, err)
			}
			stderr, err := underValgrind(bin, s.args, oneAtATime(count), "--tool=cachegrind", "--cache-sim=yes", "--cachegrind-out-file=/dev/null")
			if err != nil {
				return nil, fmt.Errorf("%s under cachegrind: %w", s.name, err)
			}
			if misses[i], err = i1Misses(stderr); err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
		}
		fp.CodeKB[s.name] = float64(hotLines(runs[0], runs[1], n)) * 64 / 1024
		fp.I1Misses[s.name] = (misses[1] - misses[0]) / float64(n)
	}
	return fp, nil
}

// oneAtATime is load's shape for the footprint: count Bindings, one
// socket, one outstanding.
func oneAtATime(count int) loadgen.STUN { return loadgen.STUN{Count: count, Sockets: 1, Window: 1} }

// underValgrind runs bench/server with args under valgrind with vgArgs
// until it has answered load (its Count Bindings, at its target), and
// returns valgrind's standard error. Go under valgrind needs
// GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1, and the process must exit
// without a signal (bench/server exits when its stdin closes).
func underValgrind(bin string, args []string, load loadgen.STUN, vgArgs ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("valgrind", slices.Concat(vgArgs, []string{bin}, args)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1")
	cmd.Stderr = &stderr
	p, err := startBenchServer2(cmd)
	if err != nil {
		return nil, err
	}
	load.Target, load.Timeout = p.udp, 10*time.Second
	res, err := loadgen.RunSTUN(context.Background(), load)
	p.stop()
	if err != nil || res.Answered != load.Count {
		return nil, fmt.Errorf("%d Bindings under valgrind: %+v, %v", load.Count, res, err)
	}
	return stderr.Bytes(), nil
}

var i1MissLine = regexp.MustCompile(`I1\s+misses:\s+([\d,]+)`)

// i1Misses reads the first-level instruction-cache misses from
// cachegrind's summary on standard error.
func i1Misses(stderr []byte) (float64, error) {
	m := i1MissLine.FindSubmatch(stderr)
	if m == nil {
		return 0, fmt.Errorf("no I1 misses in cachegrind's output: %.500s", stderr)
	}
	return strconv.ParseFloat(strings.ReplaceAll(string(m[1]), ",", ""), 64)
}

// hotLines returns how many 64-byte lines of code hold an instruction that
// ran at least hotShare times per Binding more in twice (2n Bindings) than
// in once (n).
func hotLines(once, twice map[uint64]uint64, n int) int {
	lines := map[uint64]bool{}
	for addr, c := range twice {
		if float64(c)-float64(once[addr]) >= hotShare*float64(n) {
			lines[addr>>6] = true
		}
	}
	return len(lines)
}

// instructionCounts reads a callgrind output file written with
// --dump-instr=yes ("positions: instr line", "events: Ir") and returns the
// instructions executed at each address. Cost lines give a position (an
// address in hex, or +n, -n or * relative to the previous line's) and a
// line number, then the count; the line after a calls= line is the
// call's inclusive cost, which only moves the position.
func instructionCounts(r io.Reader) (map[uint64]uint64, error) {
	counts := map[uint64]uint64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		addr      uint64
		call      bool
		positions bool
		lineNo    int
	)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "positions:"):
			if strings.Fields(line)[1] != "instr" {
				return nil, fmt.Errorf("line %d: %q: want positions: instr line (callgrind --dump-instr=yes)", lineNo, line)
			}
			positions = true
			continue
		case strings.HasPrefix(line, "calls="):
			call = true
			continue
		case line == "" || !strings.ContainsAny(line[:1], "0123456789+-*"):
			continue
		}
		if !positions {
			return nil, fmt.Errorf("line %d: a cost line before the positions: line", lineNo)
		}
		f := strings.Fields(line)
		switch p := f[0]; {
		case strings.HasPrefix(p, "0x"):
			v, err := strconv.ParseUint(p[2:], 16, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: address %q: %w", lineNo, p, err)
			}
			addr = v
		case p[0] == '+' || p[0] == '-':
			d, err := strconv.ParseInt(p, 0, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: relative address %q: %w", lineNo, p, err)
			}
			addr = uint64(int64(addr) + d)
		case p == "*":
		default:
			return nil, fmt.Errorf("line %d: position %q: want 0x..., +n, -n or *", lineNo, p)
		}
		if call {
			call = false
			continue
		}
		if len(f) < 3 {
			continue // no cost on this line
		}
		c, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: count %q: %w", lineNo, f[2], err)
		}
		counts[addr] += c
	}
	return counts, sc.Err()
}
