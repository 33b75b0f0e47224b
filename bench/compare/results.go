package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

// results holds every run of the comparison, by workload and server.
type results struct {
	runs         map[string]map[string][]sample
	Instructions *instructions
}

// sample is one load against one server, and the CPU time the server used
// meanwhile (0 where it cannot be read).
type sample struct {
	loadgen.STUNResult
	cpu time.Duration
}

func newResults() *results { return &results{runs: map[string]map[string][]sample{}} }

func (r *results) add(w, server string, res loadgen.STUNResult, cpu time.Duration) {
	if r.runs[w] == nil {
		r.runs[w] = map[string][]sample{}
	}
	r.runs[w][server] = append(r.runs[w][server], sample{res, cpu})
}

// figure is the median of one workload against one server.
type figure struct {
	Rate   float64       `json:"rate_per_s"`
	P50    time.Duration `json:"p50_ns"`
	Lost   int           `json:"lost"`
	Errors int           `json:"errors"`
	Rounds int           `json:"rounds"`
	// CPU is the server's CPU time (user and system, all its threads) per
	// answer: 0 where /proc is missing. The load generator shares the
	// cores, so a server that needs less leaves the generator more.
	CPU time.Duration `json:"server_cpu_per_answer_ns,omitempty"`
}

// ratio is one target of the comparison: stunfault's figure over another's.
type ratio struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
	// Lower is true when a lower value is better (a latency ratio).
	Lower bool `json:"lower_is_better,omitempty"`
	Met   bool `json:"met"`
	// RoundMedian is the median of the ratios round by round (each
	// round's two loads ran one after the other) and Interval its 95 %
	// bootstrap interval; both are missing with fewer than 3 rounds, and
	// for instruction counts.
	RoundMedian float64   `json:"per_round_median,omitempty"`
	Interval    []float64 `json:"interval_95,omitempty"`
}

// Noise reports whether the target lies inside the ratio's interval: the
// rounds cannot tell whether it is met.
func (q ratio) Noise() bool {
	return len(q.Interval) == 2 && q.Target > 0 && q.Interval[0] <= q.Target && q.Target <= q.Interval[1]
}

// verdict says whether the target is met, by the ratio of medians, and
// whether the rounds agree: "yes", "no", the same with "(target inside the
// interval)", or, when the whole interval lies on the other side of the
// target, "yes by the medians, no round by round" (or the reverse).
func (q ratio) verdict() string {
	met := map[bool]string{true: "yes", false: "no"}[q.Met]
	if len(q.Interval) != 2 {
		return met
	}
	if q.Noise() {
		return met + " (target inside the interval)"
	}
	roundsMet := q.Interval[0] > q.Target // the whole interval above it
	if q.Lower {
		roundsMet = q.Interval[1] < q.Target
	}
	if roundsMet != q.Met {
		return met + " by the medians, " + map[bool]string{true: "yes", false: "no"}[roundsMet] + " round by round"
	}
	return met
}

type summary struct {
	Figures      map[string]map[string]figure `json:"figures"`
	Ratios       []ratio                      `json:"ratios"`
	Instructions *instructions                `json:"instructions,omitempty"`
	LostTotal    int                          `json:"lost_total"`
}

// median returns the middle value of xs, or the mean of the middle two.
func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 0:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

func (r *results) summary() summary {
	sum := summary{Figures: map[string]map[string]figure{}, Instructions: r.Instructions}
	for w, byServer := range r.runs {
		sum.Figures[w] = map[string]figure{}
		for server, runs := range byServer {
			var rates []float64
			var p50s, cpus []time.Duration
			f := figure{Rounds: len(runs)}
			for _, run := range runs {
				rates = append(rates, run.Rate())
				p50s = append(p50s, run.Latency.P50)
				if run.cpu > 0 && run.Answered > 0 {
					cpus = append(cpus, run.cpu/time.Duration(run.Answered))
				}
				f.Lost += run.Lost
				for code, n := range run.Errors {
					if !(server == stunfault403 && code == "403") {
						f.Errors += n
					}
				}
				f.Errors += run.Invalid
			}
			f.Rate, f.P50, f.CPU = median(rates), median(p50s), median(cpus)
			sum.Figures[w][server] = f
			sum.LostTotal += f.Lost
		}
	}
	add := func(name string, num, den, target float64, lower bool, rounds []float64) {
		if num == 0 || den == 0 {
			return
		}
		v := num / den
		met := v >= target
		if lower {
			met = v <= target
		}
		q := ratio{Name: name, Value: v, Target: target, Lower: lower, Met: met}
		if m, lo, hi, ok := bootstrapMedian(rounds); ok {
			q.RoundMedian, q.Interval = m, []float64{lo, hi}
		}
		sum.Ratios = append(sum.Ratios, q)
	}
	rates := func(w, a, b string, target float64, name string) {
		byRate := func(s sample) float64 { return s.Rate() }
		add(name, sum.Figures[w][a].Rate, sum.Figures[w][b].Rate, target, false, perRound(r.runs[w][a], r.runs[w][b], byRate))
	}
	udp, tcp, relay, ping := workloads[0].Name, workloads[1].Name, workloads[2].Name, workloads[3].Name
	rates(udp, stunfault, pion, 1.20, "UDP Binding 16x4, no rules / bare pion")
	rates(udp, stunfault, coturn, 1.00, "UDP Binding 16x4, no rules / coturn")
	rates(udp, stunfault100, pion, 1.15, "UDP Binding 16x4, 100 non-matching rules / bare pion")
	rates(tcp, stunfault, coturn, 1.00, "TCP Binding 4x16 / coturn")
	rates(tcp, stunfault, pion, 0, "TCP Binding 4x16 / bare pion")
	rates(relay, stunfault, coturn, 1.00, "ChannelData relay 4x8 / coturn")
	rates(relay, stunfault, pion, 0, "ChannelData relay 4x8 / bare pion")
	byP50 := func(s sample) float64 { return float64(s.Latency.P50) }
	add("ping-pong median latency / bare pion (lower is better)",
		float64(sum.Figures[ping][stunfault].P50), float64(sum.Figures[ping][pion].P50), 1.00, true,
		perRound(r.runs[ping][stunfault], r.runs[ping][pion], byP50))
	rates(udp, stunfault403, pion, 1.30, "injected 403 / bare pion's Binding")
	rates(udp, stunfault, stunfault1, 0, "UDP Binding 16x4, read loops per CPU / 1 read loop")
	rates(relay, stunfault, stunfault1, 0, "ChannelData relay 4x8, read loops per CPU / 1 read loop")
	if in := r.Instructions; in != nil {
		add("callgrind instructions per Binding, 100 rules / bare pion, one at a time (lower is better)", in.OneAtATime.Stunfault100, in.OneAtATime.Pion, 1.10, true, nil)
		add("callgrind instructions per Binding, 100 rules / bare pion, 16x4 outstanding (lower is better)", in.Loaded.Stunfault100, in.Loaded.Pion, 1.10, true, nil)
	}
	return sum
}

func (r *results) print(w io.Writer, sum summary, rounds int, d time.Duration) {
	fmt.Fprintf(w, "stunfault comparison: %d interleaved rounds of %v per workload and server, medians\n\n", rounds, d)
	fmt.Fprintln(w, "| workload | server | answers/s | p50 latency | server CPU per answer | lost | errors |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, wl := range workloads {
		for _, server := range wl.Servers {
			f, ok := sum.Figures[wl.Name][server]
			if !ok {
				continue
			}
			cpu := "" // no /proc
			if f.CPU > 0 {
				cpu = fmt.Sprintf("%.1f µs", float64(f.CPU)/1e3)
			}
			p50 := f.P50.Round(time.Microsecond)
			if f.P50 < 100*time.Microsecond {
				p50 = f.P50.Round(100 * time.Nanosecond) // a ping-pong's few µs apart
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %v | %s | %d | %d |\n", wl.Name, server, f.Rate, p50, cpu, f.Lost, f.Errors)
		}
	}
	fmt.Fprintln(w, "\n| ratio | value | per round: median [95 % interval] | target | met |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
	for _, q := range sum.Ratios {
		target, met, rounds := "", "", ""
		if q.Target > 0 {
			cmp := ">="
			if q.Lower {
				cmp = "<="
			}
			target = fmt.Sprintf("%s %.2f", cmp, q.Target)
			met = q.verdict()
		}
		if len(q.Interval) == 2 {
			rounds = fmt.Sprintf("%.2f [%.2f, %.2f]", q.RoundMedian, q.Interval[0], q.Interval[1])
		}
		fmt.Fprintf(w, "| %s | %.2f | %s | %s | %s |\n", q.Name, q.Value, rounds, target, met)
	}
	if in := sum.Instructions; in != nil {
		fmt.Fprintf(w, "\ncallgrind, user-space instructions per Binding (GOMAXPROCS=1, one read loop; medians of %d runs of %d and %d Bindings):\n",
			in.Runs, in.Bindings, 2*in.Bindings)
		for _, c := range []struct {
			name string
			c    counts
		}{{"one at a time", in.OneAtATime}, {"16x4 outstanding", in.Loaded}} {
			fmt.Fprintf(w, "- %s: bare pion %.0f, stunfault %.0f, stunfault with 100 rules %.0f (trace off: %.0f); one server's runs differ by up to %.0f %%\n",
				c.name, c.c.Pion, c.c.Stunfault, c.c.Stunfault100, c.c.Stunfault100NoTrace, 100*c.c.Spread)
		}
		if fp := in.Footprint; fp != nil {
			fmt.Fprintf(w, "- code every Binding runs, one at a time: bare pion %.1f KB, stunfault %.1f KB, stunfault with 100 rules %.1f KB;"+
				" first-level instruction-cache misses per Binding (cachegrind): %.0f, %.0f, %.0f\n",
				fp.CodeKB[pion], fp.CodeKB[stunfault], fp.CodeKB[stunfault100], fp.I1Misses[pion], fp.I1Misses[stunfault], fp.I1Misses[stunfault100])
		}
	}
	fmt.Fprintf(w, "\nlost in all runs: %d\n\n", sum.LostTotal)
}
