package main

import (
	"math"
	"testing"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

func TestBootstrapMedian(t *testing.T) {
	tests := []struct {
		name           string
		xs             []float64
		ok             bool
		med            float64
		lo, hi         float64 // the interval must lie within [lo, hi]
		containsMedian bool
	}{
		{"too few rounds", []float64{1, 2}, false, 0, 0, 0, false},
		{"all equal", []float64{1.1, 1.1, 1.1, 1.1}, true, 1.1, 1.1, 1.1, true},
		{"odd count", []float64{0.9, 1.0, 1.1, 1.2, 1.3}, true, 1.1, 0.9, 1.3, true},
		{"even count", []float64{1.0, 1.2, 1.4, 1.6}, true, 1.3, 1.0, 1.6, true},
		{"one outlier", []float64{1.0, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06, 1.07, 5}, true, 1.04, 1.0, 1.07, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			med, lo, hi, ok := bootstrapMedian(tt.xs)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if math.Abs(med-tt.med) > 1e-9 {
				t.Errorf("median %v, want %v", med, tt.med)
			}
			if lo > hi || lo < tt.lo-1e-9 || hi > tt.hi+1e-9 {
				t.Errorf("interval [%v, %v], want within [%v, %v]", lo, hi, tt.lo, tt.hi)
			}
			if tt.containsMedian && (med < lo-1e-9 || med > hi+1e-9) {
				t.Errorf("interval [%v, %v] leaves out the median %v", lo, hi, med)
			}
			med2, lo2, hi2, _ := bootstrapMedian(tt.xs)
			if med2 != med || lo2 != lo || hi2 != hi {
				t.Errorf("second call gave %v [%v, %v], first %v [%v, %v]: want the same", med2, lo2, hi2, med, lo, hi)
			}
		})
	}
}

func TestPerRound(t *testing.T) {
	s := func(answered int) sample {
		return sample{STUNResult: loadgen.STUNResult{Answered: answered, Elapsed: time.Second}}
	}
	rate := func(x sample) float64 { return x.Rate() }
	got := perRound([]sample{s(120), s(90)}, []sample{s(100), s(100)}, rate)
	if len(got) != 2 || math.Abs(got[0]-1.2) > 1e-9 || math.Abs(got[1]-0.9) > 1e-9 {
		t.Errorf("perRound = %v, want [1.2 0.9]", got)
	}
	if got := perRound([]sample{s(1)}, []sample{s(1), s(1)}, rate); got != nil {
		t.Errorf("rounds of different counts: %v, want nil", got)
	}
	if got := perRound([]sample{s(1)}, []sample{s(0)}, rate); got != nil {
		t.Errorf("a zero denominator: %v, want nil", got)
	}
}

func TestRatioNoise(t *testing.T) {
	tests := []struct {
		q    ratio
		want bool
	}{
		{ratio{Target: 1, Interval: []float64{0.95, 1.05}}, true},
		{ratio{Target: 1, Interval: []float64{1.01, 1.05}}, false},
		{ratio{Target: 1, Interval: []float64{0.9, 0.99}}, false},
		{ratio{Target: 0, Interval: []float64{0.9, 1.1}}, false}, // no target
		{ratio{Target: 1}, false},                                // no interval
	}
	for _, tt := range tests {
		if got := tt.q.Noise(); got != tt.want {
			t.Errorf("%+v: Noise() = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestRatioVerdict(t *testing.T) {
	tests := []struct {
		q    ratio
		want string
	}{
		{ratio{Target: 1, Met: true, Interval: []float64{1.05, 1.2}}, "yes"},
		{ratio{Target: 1, Met: true, Interval: []float64{0.95, 1.2}}, "yes (target inside the interval)"},
		{ratio{Target: 1, Met: true, Interval: []float64{0.94, 0.9996}}, "yes by the medians, no round by round"},
		{ratio{Target: 1, Met: false, Interval: []float64{0.8, 0.9}}, "no"},
		{ratio{Target: 1, Met: false, Interval: []float64{1.01, 1.1}}, "no by the medians, yes round by round"},
		{ratio{Target: 1, Met: false, Lower: true, Interval: []float64{1.01, 1.18}}, "no"},
		{ratio{Target: 1, Met: true, Lower: true, Interval: []float64{0.9, 0.99}}, "yes"},
		{ratio{Target: 1, Met: true}, "yes"}, // no interval
	}
	for _, tt := range tests {
		if got := tt.q.verdict(); got != tt.want {
			t.Errorf("%+v: verdict %q, want %q", tt.q, got, tt.want)
		}
	}
}
