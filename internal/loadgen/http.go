package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Bounds on an HTTP load: a laptop's load generator, not a benchmark farm's.
const (
	MaxHTTPConcurrency = 1000
	MaxHTTPRequests    = 1_000_000
	MaxHTTPDuration    = 10 * time.Minute
	MaxHTTPBodyBytes   = 64 << 20
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 200 * time.Millisecond

// HTTP describes an HTTP load: POST requests from Concurrency workers,
// paced to Rate, until Requests were sent or Duration has passed.
type HTTP struct {
	// URL is the target of every POST. RunHTTP does not check where it
	// points: see [CheckHTTPLoopback].
	URL string
	// Concurrency is the number of workers, each with at most one request
	// in flight: 1 to MaxHTTPConcurrency.
	Concurrency int
	// Requests is the budget shared by the workers: 1 to MaxHTTPRequests.
	Requests int
	// Duration, when more than 0, ends the sending after this long (at most
	// MaxHTTPDuration); requests in flight then finish within Timeout.
	Duration time.Duration
	// Rate is requests per second across all workers; 0 sends as fast as
	// the workers can.
	Rate float64
	// Body is sent with every request (at most MaxHTTPBodyBytes).
	Body []byte
	// Header holds extra request headers.
	Header http.Header
	// Host, when set, replaces the Host header (net/http takes it from
	// Request.Host, not from Header).
	Host string
	// Timeout bounds each request, answer included; more than 0.
	Timeout time.Duration
	// Progress, when not nil, gets a progress line ("\r..."), redrawn every
	// 200ms and ended with a newline when the run ends: give it a terminal.
	Progress io.Writer
}

// Validate checks the load's bounds; it returns an error naming the field
// and what was expected.
func (o *HTTP) Validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > MaxHTTPConcurrency:
		return fmt.Errorf("loadgen: Concurrency %d not in 1..%d", o.Concurrency, MaxHTTPConcurrency)
	case o.Requests < 1 || o.Requests > MaxHTTPRequests:
		return fmt.Errorf("loadgen: Requests %d not in 1..%d", o.Requests, MaxHTTPRequests)
	case o.Duration < 0 || o.Duration > MaxHTTPDuration:
		return fmt.Errorf("loadgen: Duration %v not in 0..%v", o.Duration, MaxHTTPDuration)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return fmt.Errorf("loadgen: Rate %v: want 0 or more", o.Rate)
	case len(o.Body) > MaxHTTPBodyBytes:
		return fmt.Errorf("loadgen: Body of %d bytes, more than %d", len(o.Body), MaxHTTPBodyBytes)
	case o.Timeout <= 0:
		return fmt.Errorf("loadgen: Timeout %v: want more than 0", o.Timeout)
	}
	return nil
}

// RunHTTP sends the requests: o.Concurrency workers share the budget of
// o.Requests, paced to o.Rate, until the budget is spent, o.Duration has
// passed or ctx ends. Requests in flight when the duration ends finish
// (within o.Timeout); ctx ending cancels them. The error is only for
// options out of bounds: failed requests are counted in the Result.
func RunHTTP(ctx context.Context, o HTTP) (*HTTPResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	res := &HTTPResult{Statuses: map[int]int{}}
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		sendCtx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	transport := &http.Transport{
		Proxy:               nil, // the target is the caller's to check, not a proxy's
		MaxIdleConnsPerHost: o.Concurrency,
		ForceAttemptHTTP2:   true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: o.Timeout}
	limit := rate.Inf
	if o.Rate > 0 {
		limit = rate.Limit(o.Rate)
	}
	pace := rate.NewLimiter(limit, 1)

	var issued, done, inflight atomic.Int64
	start := time.Now()
	stopProgress := startProgress(o.Progress, start, &done, &inflight)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for sendCtx.Err() == nil && issued.Add(1) <= int64(o.Requests) {
				// Wait fails at once when the next slot is past the
				// duration's end: the run is over for this worker.
				if pace.Wait(sendCtx) != nil {
					return
				}
				inflight.Add(1)
				sent := time.Now()
				status, err := send(ctx, client, &o)
				inflight.Add(-1)
				done.Add(1)
				res.add(sent.Sub(start), status, time.Since(sent), err)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	stopProgress()
	res.finish()
	return res, nil
}

// send makes one request and reads its answer.
func send(ctx context.Context, client *http.Client, o *HTTP) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.URL, strings.NewReader(string(o.Body)))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range o.Header {
		req.Header[k] = vs
	}
	if o.Host != "" {
		req.Host = o.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, nil
}
