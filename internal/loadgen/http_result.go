package loadgen

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// HTTPResult is what an HTTP load saw.
type HTTPResult struct {
	// Requests is how many requests were sent; Answered how many got an
	// HTTP answer, whatever its status.
	Requests int
	Answered int
	// Statuses counts the answers by HTTP status.
	Statuses map[int]int
	// Errors counts the requests that got no answer (refused, reset, timed
	// out); FirstErr is the first of them.
	Errors   int
	FirstErr error
	// Elapsed runs from the start to the last answer.
	Elapsed time.Duration
	// Sending runs from the first request sent to the last: the window in
	// which the target received the load.
	Sending time.Duration
	// Latency holds nearest-rank percentiles of the answered requests'
	// latencies, rounded to the microsecond.
	Latency Percentiles

	mu          sync.Mutex
	latencies   []time.Duration // one per answer: at most MaxHTTPRequests
	first, last time.Duration   // since the start, of the first and last request sent
}

func (r *HTTPResult) add(sent time.Duration, status int, latency time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Requests == 0 || sent < r.first {
		r.first = sent
	}
	r.last = max(r.last, sent)
	r.Requests++
	if err != nil {
		r.Errors++
		if r.FirstErr == nil {
			r.FirstErr = err
		}
		return
	}
	r.Answered++
	r.Statuses[status]++
	r.latencies = append(r.latencies, latency)
}

func (r *HTTPResult) finish() {
	slices.Sort(r.latencies)
	r.Sending = r.last - r.first
	r.Latency = nearestRank(r.latencies)
}

// nearestRank returns the nearest-rank percentiles of sorted, rounded to
// the microsecond; zero when sorted is empty.
func nearestRank(sorted []time.Duration) Percentiles {
	at := func(p float64) time.Duration {
		if len(sorted) == 0 {
			return 0
		}
		i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
		return sorted[min(max(i, 0), len(sorted)-1)].Round(time.Microsecond)
	}
	return Percentiles{P50: at(50), P90: at(90), P99: at(99), Max: at(100)}
}

// SendRate is the rate at which requests were sent, in requests per
// second: the intervals between the first request and the last, over the
// time they took. It does not depend on how long the answers took, so it
// is the rate a webhook's rate_limit saw. It is 0 with fewer than two
// requests, or when they all left at once (within a millisecond).
func (r *HTTPResult) SendRate() float64 {
	if r.Requests < 2 || r.Sending < time.Millisecond {
		return 0
	}
	return float64(r.Requests-1) / r.Sending.Seconds()
}

// WriteSummary writes the closing summary of a load against target with
// the given concurrency: requests and the send rate, status counts,
// transport errors, latency percentiles.
func (r *HTTPResult) WriteSummary(w io.Writer, target string, concurrency int) {
	fmt.Fprintf(w, "target: POST %s\n", target)
	fmt.Fprintf(w, "requests: %d in %v, concurrency %d\n", r.Requests, r.Elapsed.Round(time.Microsecond), concurrency)
	switch {
	case r.Requests < 2:
	case r.SendRate() == 0:
		fmt.Fprintf(w, "sent: all %d at once\n", r.Requests)
	default:
		fmt.Fprintf(w, "sent: %.1f/s over %v\n", r.SendRate(), r.Sending.Round(time.Microsecond))
	}
	fmt.Fprintln(w, "status:")
	for _, c := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(w, "  %d: %d\n", c, r.Statuses[c])
	}
	fmt.Fprintf(w, "transport errors: %d\n", r.Errors)
	if r.FirstErr != nil {
		fmt.Fprintf(w, "  first: %v\n", r.FirstErr)
	}
	if r.Answered == 0 {
		fmt.Fprintln(w, "latency: no answers")
		return
	}
	l := r.Latency
	fmt.Fprintf(w, "latency: p50 %v, p90 %v, p99 %v, max %v\n", l.P50, l.P90, l.P99, l.Max)
}
