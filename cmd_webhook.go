package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of `stunfault webhook`: a load generator for a laptop, not a
// benchmark farm.
const (
	maxLoadConcurrency = 1000
	maxLoadRequests    = 1_000_000
	maxLoadDuration    = 10 * time.Minute
	maxLoadBodyBytes   = 64 << 20
	progressInterval   = 200 * time.Millisecond
)

// loadOptions are the parsed flags of `stunfault webhook`.
type loadOptions struct {
	url         string
	concurrency int
	requests    int
	duration    time.Duration
	rate        float64
	body        []byte
	headers     http.Header
	host        string // a -H Host: value, which net/http takes from Request.Host
	timeout     time.Duration
}

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string { return strings.Join(*h, ", ") }

func (h *headerFlags) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	*h = append(*h, v)
	return nil
}

// runWebhook is `stunfault webhook`: it sends POST requests to a webhook of
// a running stunfault (or any loopback URL) and prints a summary.
func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, allowRemote, err := parseWebhookFlags(args, stderr)
	if err != nil {
		return err
	}
	if !allowRemote {
		if err := checkLoopback(ctx, o.url); err != nil {
			return err
		}
	}
	res := generateLoad(ctx, o, stdout)
	res.print(stdout, o)
	if res.total > 0 && res.responses() == 0 {
		return fmt.Errorf("webhook: all %d requests failed: %w", res.total, res.firstErr)
	}
	return nil
}

func parseWebhookFlags(args []string, stderr io.Writer) (loadOptions, bool, error) {
	fs := newFlagSet("webhook", stderr)
	httpAddr := fs.String("http", "127.0.0.1:8478", "`address` of stunfault's HTTP side")
	name := fs.String("name", "servicenow", "webhook `name` (POST /webhook/NAME)")
	rawURL := fs.String("url", "", "target `URL` (overrides -http and -name)")
	c := fs.Int("c", 1, fmt.Sprintf("concurrent requests (1 to %d)", maxLoadConcurrency))
	n := fs.Int("n", 1, fmt.Sprintf("total requests (1 to %d)", maxLoadRequests))
	d := fs.Duration("d", 0, fmt.Sprintf("send for this long (at most %v); with -n, stop at whichever comes first", maxLoadDuration))
	rate := fs.Float64("rate", 0, "requests per second overall (0 = as fast as possible)")
	body := fs.String("body", "", "request body")
	bodyFile := fs.String("body-file", "", "read the request body from `FILE` (- = stdin)")
	var headers headerFlags
	fs.Var(&headers, "H", "extra request header \"Name: value\" (repeatable)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	allowRemote := fs.Bool("allow-remote", false, "allow a target that is not loopback")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault webhook [flags]\n\nSends POST requests to a webhook and prints status counts and latencies.\nThe target must be loopback unless -allow-remote is given.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return loadOptions{}, false, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	o := loadOptions{concurrency: *c, requests: *n, duration: *d, rate: *rate, timeout: *timeout, headers: http.Header{}}
	switch {
	case fs.NArg() > 0:
		return o, false, inputErrorf("webhook: unexpected arguments %q", fs.Args())
	case o.concurrency < 1 || o.concurrency > maxLoadConcurrency:
		return o, false, inputErrorf("webhook: -c must be between 1 and %d, got %d", maxLoadConcurrency, o.concurrency)
	case o.requests < 1 || o.requests > maxLoadRequests:
		return o, false, inputErrorf("webhook: -n must be between 1 and %d, got %d", maxLoadRequests, o.requests)
	case set["d"] && (o.duration <= 0 || o.duration > maxLoadDuration):
		return o, false, inputErrorf("webhook: -d must be more than 0 and at most %v, got %v", maxLoadDuration, o.duration)
	case math.IsNaN(o.rate) || math.IsInf(o.rate, 0) || o.rate < 0:
		return o, false, inputErrorf("webhook: -rate must be 0 (as fast as possible) or more, got %v", o.rate)
	case o.timeout <= 0:
		return o, false, inputErrorf("webhook: -timeout must be more than 0, got %v", o.timeout)
	case set["body"] && set["body-file"]:
		return o, false, inputErrorf("webhook: give -body or -body-file, not both")
	}
	if set["d"] && !set["n"] {
		o.requests = maxLoadRequests // -d alone: the duration decides
	}

	o.body = []byte(*body)
	if *bodyFile != "" {
		b, err := readBodyFile(*bodyFile)
		if err != nil {
			return o, false, err
		}
		o.body = b
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, "Host") {
			o.host = v
			continue
		}
		o.headers.Add(k, v)
	}

	o.url = *rawURL
	if o.url == "" {
		o.url = "http://" + *httpAddr + "/webhook/" + url.PathEscape(*name)
	}
	u, err := url.Parse(o.url)
	if err != nil {
		return o, false, &inputError{msg: fmt.Sprintf("webhook: bad target URL: %v", err), err: err}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, false, inputErrorf("webhook: target URL %q: want http://HOST[:PORT]/...", o.url)
	}
	return o, *allowRemote, nil
}

// readBodyFile reads -body-file: a file, or stdin for "-".
func readBodyFile(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, &inputError{msg: fmt.Sprintf("webhook: -body-file: %v", err), err: err}
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLoadBodyBytes+1))
	if err != nil {
		return nil, &inputError{msg: fmt.Sprintf("webhook: -body-file: %v", err), err: err}
	}
	if len(b) > maxLoadBodyBytes {
		return nil, inputErrorf("webhook: -body-file: larger than %d bytes", maxLoadBodyBytes)
	}
	return b, nil
}

// checkLoopback refuses a target whose host is not loopback (127.0.0.0/8,
// ::1 or "localhost"), resolving names, before any request is sent: the
// load generator must not be pointed at someone else's server by accident.
func checkLoopback(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return &inputError{msg: fmt.Sprintf("webhook: bad target URL: %v", err), err: err}
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return &inputError{msg: fmt.Sprintf("webhook: cannot check that %q is loopback: %v", host, err), err: err}
		}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return inputErrorf("webhook: target %s (%s) is not loopback; pass -allow-remote to send to it anyway", host, a)
		}
	}
	return nil
}

// loadResult is what a run of the load generator saw.
type loadResult struct {
	mu        sync.Mutex
	total     int // requests sent
	statuses  map[int]int
	latencies []time.Duration // of requests that got an answer
	errors    int             // requests that got no answer
	firstErr  error
	elapsed   time.Duration
}

func (r *loadResult) responses() int {
	n := 0
	for _, c := range r.statuses {
		n += c
	}
	return n
}

func (r *loadResult) add(status int, latency time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if err != nil {
		r.errors++
		if r.firstErr == nil {
			r.firstErr = err
		}
		return
	}
	r.statuses[status]++
	r.latencies = append(r.latencies, latency)
}

// generateLoad sends the requests: o.concurrency workers share the budget of
// o.requests, paced to o.rate, until the budget is spent, o.duration has
// passed or ctx ends. Requests in flight when the duration ends finish
// (within o.timeout); ctx ending cancels them.
func generateLoad(ctx context.Context, o loadOptions, stdout io.Writer) *loadResult {
	res := &loadResult{statuses: map[int]int{}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	transport := &http.Transport{
		Proxy:               nil, // the target was checked, not a proxy
		MaxIdleConnsPerHost: o.concurrency,
		ForceAttemptHTTP2:   true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: o.timeout}
	pace := newPacer(o.rate)

	var issued, done, inflight atomic.Int64
	start := time.Now()
	stopProgress := startProgress(stdout, start, &done, &inflight)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for runCtx.Err() == nil && issued.Add(1) <= int64(o.requests) {
				if !pace.wait(runCtx) {
					return
				}
				inflight.Add(1)
				status, latency, err := send(ctx, client, o)
				inflight.Add(-1)
				done.Add(1)
				res.add(status, latency, err)
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	stopProgress()
	return res
}

// send makes one request and reads its answer.
func send(ctx context.Context, client *http.Client, o loadOptions) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.url, strings.NewReader(string(o.body)))
	if err != nil {
		return 0, 0, fmt.Errorf("webhook: build request: %w", err)
	}
	for k, vs := range o.headers {
		req.Header[k] = vs
	}
	if o.host != "" {
		req.Host = o.host
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("webhook: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("webhook: read answer: %w", err)
	}
	return resp.StatusCode, time.Since(start), nil
}

// pacer spaces requests 1/rate apart across all workers; rate 0 does not
// wait.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the caller's slot; it reports false when ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval <= 0 {
		return ctx.Err() == nil
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	d := time.Until(slot)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress draws a progress line on a terminal, at most every 200ms,
// until the returned stop is called. Elsewhere it draws nothing.
func startProgress(w io.Writer, start time.Time, done, inflight *atomic.Int64) (stop func()) {
	if !isTerminal(w) {
		return func() {}
	}
	draw := func() {
		el := time.Since(start).Seconds()
		rate := 0.0
		if el > 0 {
			rate = float64(done.Load()) / el
		}
		fmt.Fprintf(w, "\r%d done, %d in flight, %.1f req/s   ", done.Load(), inflight.Load(), rate)
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				draw()
			case <-quit:
				return
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		draw()
		fmt.Fprintln(w)
	}
}

// print writes the closing summary.
func (r *loadResult) print(w io.Writer, o loadOptions) {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.total) / r.elapsed.Seconds()
	}
	fmt.Fprintf(w, "target: POST %s\n", o.url)
	fmt.Fprintf(w, "requests: %d in %v (%.1f/s), concurrency %d\n", r.total, r.elapsed.Round(time.Microsecond), rate, o.concurrency)
	fmt.Fprintln(w, "status:")
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "  %d: %d\n", c, r.statuses[c])
	}
	fmt.Fprintf(w, "transport errors: %d\n", r.errors)
	if r.firstErr != nil {
		fmt.Fprintf(w, "  first: %v\n", r.firstErr)
	}
	if len(r.latencies) == 0 {
		fmt.Fprintln(w, "latency: no answers")
		return
	}
	slices.Sort(r.latencies)
	fmt.Fprintf(w, "latency: p50 %v, p90 %v, p99 %v, max %v\n",
		percentile(r.latencies, 50), percentile(r.latencies, 90), percentile(r.latencies, 99), percentile(r.latencies, 100))
}

// percentile is the nearest-rank p-th percentile of sorted, rounded to the
// microsecond.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = min(max(i, 0), len(sorted)-1)
	return sorted[i].Round(time.Microsecond)
}
