package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// STUN modes: what one transaction of a STUN load is.
const (
	// ModeBinding sends Binding requests and checks each success's
	// XOR-MAPPED-ADDRESS against the socket's own address.
	ModeBinding = "binding"
	// ModeAllocate runs whole Allocate cycles with pion's TURN client: the
	// 401 challenge, the signed Allocate, and a Refresh with lifetime 0.
	ModeAllocate = "allocate"
	// ModeChannelData sends datagrams through one allocation per socket to
	// an echo peer and back (pion's client moves to ChannelData once the
	// channel is bound).
	ModeChannelData = "channeldata"
)

// Bounds on a STUN load, so that no typo runs a load for ever.
const (
	MaxSockets  = 1024
	MaxWindow   = 1024
	MaxCount    = 100_000_000
	MaxDuration = time.Hour
)

// STUN describes a STUN/TURN load: Sockets client sockets, each keeping
// Window transactions outstanding, until Count transactions were sent or
// Duration has passed, whichever comes first (at least one must be set).
type STUN struct {
	// Target is the server's address, an IP literal and a port
	// ("127.0.0.1:3478", "[::1]:3478"): no name is looked up.
	Target string
	// Transport is "udp" (the default), "tcp" or "tls".
	Transport string
	// Mode is ModeBinding (the default), ModeAllocate or ModeChannelData.
	Mode string
	// Sockets is the number of client sockets (default 1, at most
	// MaxSockets); in the TURN modes each holds one allocation at a time.
	Sockets int
	// Window is the number of transactions each socket keeps outstanding
	// (default 1, at most MaxWindow). Allocate cycles are one at a time.
	Window int
	// Count bounds the transactions sent in all (at most MaxCount).
	Count int
	// Duration bounds the time sending (at most MaxDuration).
	Duration time.Duration
	// Timeout is how long an answer may take before its transaction counts
	// as lost (default 1 s).
	Timeout time.Duration
	// Username and Password are the TURN credentials of the TURN modes;
	// Realm is taken from the server's 401 when empty.
	Username, Password, Realm string
	// Peer is the echo peer of ModeChannelData, an IP literal and a port;
	// when empty, the load runs its own UDP echo peer on the loopback
	// address of Target's family.
	Peer string
	// Size is the payload size of ModeChannelData (default 100 bytes, at
	// least 16).
	Size int
	// TLS is the client TLS config for Transport "tls"; nil verifies
	// nothing (a load tool usually meets self-signed test servers).
	TLS *tls.Config
	// AllowRemote allows a Target or Peer that is not a loopback address.
	AllowRemote bool
}

// STUNResult is what a STUN load measured.
type STUNResult struct {
	Mode      string `json:"mode"`
	Transport string `json:"transport"`
	Sockets   int    `json:"sockets"`
	Window    int    `json:"window"`
	// Sent counts transactions started; Answered those that got an answer
	// (success or error) in time; Lost those that did not.
	Sent     int `json:"sent"`
	Answered int `json:"answered"`
	Lost     int `json:"lost"`
	// Errors counts error responses by code ("403": 12).
	Errors map[string]int `json:"errors,omitempty"`
	// Invalid counts answers that failed validation (wrong method, a
	// success without the client's XOR-MAPPED-ADDRESS, an echo that does
	// not match what was sent); Failures holds the first few reasons.
	Invalid  int      `json:"invalid"`
	Failures []string `json:"failures,omitempty"`
	// Elapsed is the time from the first transaction to the last answer.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Latency holds percentiles of the time to each answer.
	Latency Percentiles `json:"latency"`
}

// Rate returns the answers per second.
func (r STUNResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// Percentiles are latency percentiles.
type Percentiles struct {
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// maxFailures bounds the failure reasons a result keeps.
const maxFailures = 5

// maxSamples bounds the latency samples kept per socket; beyond it they are
// reservoir-sampled, so memory stays bounded whatever the count.
const maxSamples = 100_000

// Validate checks the load's parameters and fills in defaults; it returns an
// error naming the field and what was expected.
func (l *STUN) Validate() error {
	if l.Transport == "" {
		l.Transport = "udp"
	}
	if l.Mode == "" {
		l.Mode = ModeBinding
	}
	if l.Sockets == 0 {
		l.Sockets = 1
	}
	if l.Window == 0 {
		l.Window = 1
	}
	if l.Timeout == 0 {
		l.Timeout = time.Second
	}
	if l.Size == 0 {
		l.Size = 100
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := checkAddr(l.Target, l.AllowRemote); err != nil {
		bad("target", "%v", err)
	}
	if l.Peer != "" {
		if err := checkAddr(l.Peer, l.AllowRemote); err != nil {
			bad("peer", "%v", err)
		}
	}
	switch l.Transport {
	case "udp", "tcp", "tls":
	default:
		bad("transport", "want udp, tcp or tls, got %q", l.Transport)
	}
	switch l.Mode {
	case ModeBinding:
	case ModeAllocate, ModeChannelData:
		if l.Username == "" {
			bad("username", "mode %s needs TURN credentials", l.Mode)
		}
		if l.Transport == "tls" {
			bad("transport", "mode %s runs over udp or tcp", l.Mode)
		}
	default:
		bad("mode", "want %s, %s or %s, got %q", ModeBinding, ModeAllocate, ModeChannelData, l.Mode)
	}
	if l.Sockets < 1 || l.Sockets > MaxSockets {
		bad("sockets", "want 1 to %d, got %d", MaxSockets, l.Sockets)
	}
	if l.Window < 1 || l.Window > MaxWindow {
		bad("window", "want 1 to %d, got %d", MaxWindow, l.Window)
	}
	if l.Count < 0 || l.Count > MaxCount {
		bad("count", "want 0 to %d, got %d", MaxCount, l.Count)
	}
	if l.Duration < 0 || l.Duration > MaxDuration {
		bad("duration", "want 0 to %v, got %v", MaxDuration, l.Duration)
	}
	if l.Count == 0 && l.Duration == 0 {
		bad("count", "set a count, a duration or both: a load is always bounded")
	}
	if l.Timeout < time.Millisecond || l.Timeout > time.Minute {
		bad("timeout", "want 1ms to 1m, got %v", l.Timeout)
	}
	if l.Size < 16 || l.Size > 1200 {
		bad("size", "want 16 to 1200 bytes, got %d", l.Size)
	}
	return errors.Join(errs...)
}

func checkAddr(s string, allowRemote bool) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return fmt.Errorf("want an IP literal and a port such as 127.0.0.1:3478 or [::1]:3478, got %q", s)
	}
	if !ap.Addr().IsLoopback() && !allowRemote {
		return fmt.Errorf("%s is not a loopback address (allow it explicitly to load a remote server)", s)
	}
	return nil
}

// RunSTUN runs the load l until its count or duration is reached, or ctx
// ends, and returns what it measured. It returns an error, and no result,
// when l is invalid or no socket could be opened.
func RunSTUN(ctx context.Context, l STUN) (STUNResult, error) {
	if err := l.Validate(); err != nil {
		return STUNResult{}, err
	}
	if l.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Duration)
		defer cancel()
	}
	bud := newBudget(l.Count)
	var run func(context.Context, *STUN, *budget, *tally) error
	switch l.Mode {
	case ModeBinding:
		run = runBinding
	case ModeAllocate:
		run = runAllocate
	case ModeChannelData:
		if l.Peer == "" {
			peer, err := startEcho(l.Target)
			if err != nil {
				return STUNResult{}, err
			}
			defer peer.Close()
			l.Peer = peer.LocalAddr().String()
		}
		run = runChannelData
	}
	tallies := make([]*tally, l.Sockets)
	errs := make([]error, l.Sockets)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range tallies {
		tallies[i] = newTally()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run(ctx, &l, bud, tallies[i])
		}()
	}
	wg.Wait()
	res := merge(tallies)
	res.Elapsed = time.Since(start)
	res.Mode, res.Transport, res.Sockets, res.Window = l.Mode, l.Transport, l.Sockets, l.Window
	if res.Sent == 0 {
		if err := errors.Join(errs...); err != nil {
			return res, fmt.Errorf("loadgen: no transaction sent: %w", err)
		}
	}
	for _, err := range errs {
		if err != nil {
			res.fail(err.Error())
		}
	}
	return res, nil
}

// budget hands out the transactions of a load; unlimited when n is 0.
type budget struct {
	unlimited bool
	left      atomic.Int64
}

func newBudget(n int) *budget {
	b := &budget{unlimited: n == 0}
	b.left.Store(int64(n))
	return b
}

// take reports whether one more transaction may be sent.
func (b *budget) take() bool {
	if b.unlimited {
		return true
	}
	return b.left.Add(-1) >= 0
}

// tally is one socket's counts; only its own goroutine writes it.
type tally struct {
	sent, answered, lost, invalid int
	errors                        map[int]int
	failures                      []string
	samples                       []time.Duration
	seen                          int
	rng                           uint64
}

func newTally() *tally { return &tally{errors: map[int]int{}, rng: uint64(time.Now().UnixNano()) | 1} }

func (t *tally) answer(d time.Duration) {
	t.answered++
	t.seen++
	if len(t.samples) < maxSamples {
		t.samples = append(t.samples, d)
		return
	}
	// Reservoir sampling (xorshift is enough for choosing a slot).
	t.rng ^= t.rng << 13
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	if j := int(t.rng % uint64(t.seen)); j < maxSamples {
		t.samples[j] = d
	}
}

func (t *tally) invalidf(format string, args ...any) {
	t.invalid++
	if len(t.failures) < maxFailures {
		t.failures = append(t.failures, fmt.Sprintf(format, args...))
	}
}

func (r *STUNResult) fail(msg string) {
	if len(r.Failures) < maxFailures {
		r.Failures = append(r.Failures, msg)
	}
}

func merge(ts []*tally) STUNResult {
	var r STUNResult
	var samples []time.Duration
	for _, t := range ts {
		r.Sent += t.sent
		r.Answered += t.answered
		r.Lost += t.lost
		r.Invalid += t.invalid
		for code, n := range t.errors {
			if r.Errors == nil {
				r.Errors = map[string]int{}
			}
			r.Errors[fmt.Sprint(code)] += n
		}
		for _, f := range t.failures {
			r.fail(f)
		}
		samples = append(samples, t.samples...)
	}
	slices.Sort(samples)
	at := func(q float64) time.Duration {
		if len(samples) == 0 {
			return 0
		}
		return samples[min(len(samples)-1, int(q*float64(len(samples))))]
	}
	r.Latency = Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
	return r
}

// dial opens the client socket of a Binding load.
func dial(ctx context.Context, l *STUN) (net.Conn, error) {
	var d net.Dialer
	switch l.Transport {
	case "tls":
		cfg := l.TLS
		if cfg == nil {
			cfg = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a load tool meets self-signed test servers; pass STUN.TLS to verify.
		}
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		return td.DialContext(ctx, "tcp", l.Target)
	default:
		return d.DialContext(ctx, l.Transport, l.Target)
	}
}
