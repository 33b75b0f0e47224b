package main

import (
	"math/rand/v2"
	"slices"
)

// Rounds and resamples of the per-round interval.
const (
	minIntervalRounds = 3    // fewer rounds: no interval
	resamples         = 2000 // bootstrap resamples
)

// perRound returns, round by round, f of num's load over f of den's, or nil
// when the two did not run the same rounds. Within a round the two loads ran
// one after the other, so each ratio is nearly free of the machine's drift,
// which the medians of the two servers' figures are not.
func perRound(num, den []sample, f func(sample) float64) []float64 {
	if len(num) != len(den) || len(num) == 0 {
		return nil
	}
	out := make([]float64, 0, len(num))
	for i := range num {
		d := f(den[i])
		if d == 0 {
			return nil
		}
		out = append(out, f(num[i])/d)
	}
	return out
}

// bootstrapMedian returns the median of xs and a 95 % interval for it: the
// 2.5th and 97.5th percentiles of the medians of resamples of xs (each len(xs)
// draws with replacement). The draws come from a fixed seed, so the same
// runs always print the same interval. ok is false with fewer than
// minIntervalRounds values.
func bootstrapMedian(xs []float64) (med, lo, hi float64, ok bool) {
	if len(xs) < minIntervalRounds {
		return 0, 0, 0, false
	}
	rng := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, resamples)
	draw := make([]float64, len(xs))
	for i := range meds {
		for j := range draw {
			draw[j] = xs[rng.IntN(len(xs))]
		}
		meds[i] = median(draw)
	}
	slices.Sort(meds)
	return median(xs), meds[resamples*25/1000], meds[resamples*975/1000-1], true
}
