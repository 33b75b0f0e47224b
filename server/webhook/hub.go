package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// DefaultHistory is how many records a Hub keeps per webhook when
// Options.History is 0.
const DefaultHistory = 1000

// defaultMaxBodyBytes bounds request bodies of a webhook configured without
// max_body_bytes (config validation requires one; a Go caller may omit it).
const defaultMaxBodyBytes = 1 << 20

// Options are a Hub's Go-only knobs. The zero value is usable.
type Options struct {
	// Clock is the source of time for latency, rate limits and windows;
	// nil means faults.SystemClock.
	Clock faults.Clock
	// Seed seeds the random source behind jitter and error_probability
	// (a PCG from math/rand/v2): the same seed gives the same draws.
	Seed uint64
	// Logger receives the Hub's logs, at Debug only; nil means silent.
	Logger *slog.Logger
	// History is how many records are kept per webhook; 0 means
	// DefaultHistory.
	History int
	// MaxHeld bounds the sync requests held at once, over every webhook;
	// beyond, a request gets 503 with Retry-After. 0 means DefaultMaxHeld.
	MaxHeld int
	// MaxPending bounds the async requests whose work is pending at once,
	// over every webhook; beyond, a request gets 503 with Retry-After. 0
	// means DefaultMaxPending.
	MaxPending int
	// Observe, when set, is called once for every request as it ends, with
	// the webhook's name and how long the request took (End - Start on the
	// Hub's clock): a sync request when it is answered, an async one when
	// its work finishes, a refused one at once. It runs under the
	// webhook's lock, so it must be quick and must not call the Hub; the
	// server feeds its latency histogram from it.
	Observe func(webhook string, took time.Duration)
}

// Each held or pending request keeps up to 64 KiB of its body, so at the
// defaults they hold at most 128 MiB together.
const (
	// DefaultMaxHeld is Options.MaxHeld's default.
	DefaultMaxHeld = 1024
	// DefaultMaxPending is Options.MaxPending's default.
	DefaultMaxPending = 1024
)

// Hub is the simulated webhook side: an http.Handler for POST
// /webhook/{name} and the faults.Signals the engine reads. It is safe for
// concurrent use. The caller should call Close when finished: it ends every
// held request and pending work.
type Hub struct {
	clock   faults.Clock
	log     *slog.Logger
	hooks   map[string]*hook // fixed by New: read without locking
	list    []*hook          // hooks sorted by name
	names   []string
	history int
	nextID  atomic.Uint64
	load    *load // held and pending requests, against their bounds

	rngMu sync.Mutex
	rng   *rand.Rand

	changes *changes // wakes Wait

	closed    atomic.Bool
	done      chan struct{} // closed by Close: held requests answer 503
	closeOnce sync.Once
}

var _ faults.Signals = (*Hub)(nil)

// hook is one webhook's settings, counters and records.
type hook struct {
	changes *changes // the Hub's: notified after every count change
	load    *load    // the Hub's
	name    string
	// inflight counts held sync requests, pending held ones plus async work
	// in progress; synthetic is webhook.set's synthetic load and syncMode
	// the current mode. Atomics, so the Signals read them without locking.
	inflight, pending, synthetic atomic.Int64
	syncMode                     atomic.Bool

	mu       sync.RWMutex // guards what follows and every entry's fields
	cfg      config.Webhook
	observe  func(webhook string, took time.Duration) // Options.Observe, or nil
	bucket   bucket
	records  ring     // every request, in arrival order
	ended    ring     // ended requests, in End order (for Recent's window)
	active   []*entry // held or pending now
	requests int
	statuses map[int]int
}

// New returns a Hub serving hooks (the config's [webhooks.NAME] tables). It
// does not validate them (config.Validate does), but fills what a Go caller
// may leave zero: mode "" is sync, status 0 is 200, max_body_bytes 0 is
// 1 MiB. An unknown mode is served as sync.
func New(hooks map[string]config.Webhook, opts Options) *Hub {
	h := &Hub{
		clock:   opts.Clock,
		log:     opts.Logger,
		hooks:   make(map[string]*hook, len(hooks)),
		history: opts.History,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		done:    make(chan struct{}),
		changes: newChanges(),
		load:    &load{maxHeld: int64(opts.MaxHeld), maxPending: int64(opts.MaxPending)},
	}
	if h.load.maxHeld <= 0 {
		h.load.maxHeld = DefaultMaxHeld
	}
	if h.load.maxPending <= 0 {
		h.load.maxPending = DefaultMaxPending
	}
	if h.clock == nil {
		h.clock = faults.SystemClock{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.history <= 0 {
		h.history = DefaultHistory
	}
	for name, cfg := range hooks {
		cfg = fill(cfg)
		hk := &hook{
			changes:  h.changes,
			load:     h.load,
			name:     name,
			cfg:      cfg,
			observe:  opts.Observe,
			bucket:   newBucket(cfg.RateLimit),
			records:  newRing(h.history),
			ended:    newRing(h.history),
			statuses: map[int]int{},
		}
		hk.syncMode.Store(cfg.Mode != "async")
		h.hooks[name] = hk
		h.names = append(h.names, name)
	}
	slices.Sort(h.names)
	for _, name := range h.names {
		h.list = append(h.list, h.hooks[name])
	}
	return h
}

func fill(c config.Webhook) config.Webhook {
	if c.Mode != "async" {
		c.Mode = "sync"
	}
	if c.Status == 0 {
		c.Status = http.StatusOK
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	return c
}

// Names returns the webhooks' names, sorted.
func (h *Hub) Names() []string { return slices.Clone(h.names) }

// errorBody is the JSON body of every answer the Hub makes on its own
// account (404, 405, 413, 429, 503), as opposed to the configured body.
type errorBody struct {
	Error    string   `json:"error"`
	Webhooks []string `json:"webhooks,omitempty"`
}

// acceptedBody is an async webhook's 202 body.
type acceptedBody struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// ServeHTTP answers POST /webhook/{name}. The name is the {name} path value
// when the Hub is mounted with that pattern, otherwise what follows
// "/webhook/" in the path (the server mounts the Hub at "/webhook/").
//
// An unknown name gets 404 and a method other than POST 405, neither
// recorded. Every other request is recorded: a body over max_body_bytes gets
// 413, a request beyond rate_limit 429 with Retry-After, and the rest are
// answered after the latency (sync) or at once with 202 while the work stays
// pending for the latency (async). With error_status set, error_probability
// of the requests get error_status instead: after the latency in sync mode,
// at once (and with no pending work) in async mode. After Close every
// request, and every request still held, gets 503.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.clock.Now()
	name := hookName(r)
	hk := h.hooks[name]
	if hk == nil {
		writeJSON(w, http.StatusNotFound, errorBody{
			Error:    fmt.Sprintf("unknown webhook %q (have %s)", name, orNone(h.names)),
			Webhooks: h.names,
		})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s not allowed: webhooks take POST", r.Method)})
		return
	}
	if h.closed.Load() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "webhook: closed"})
		return
	}

	cfg := hk.config()
	e := &entry{
		Record: Record{
			ID:          h.nextID.Add(1),
			Webhook:     name,
			Start:       start,
			HeaderBytes: headerBytes(r),
			Remote:      r.RemoteAddr,
			Mode:        cfg.Mode,
		},
		active: -1,
	}
	tooLarge, err := readBody(w, r, cfg.MaxBodyBytes, e)
	switch {
	case tooLarge:
		h.answerNow(w, r, hk, e, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body over max_body_bytes (%d)", cfg.MaxBodyBytes))
		return
	case err != nil:
		h.answerNow(w, r, hk, e, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	if ok, wait := hk.take(h.clock.Now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		h.answerNow(w, r, hk, e, http.StatusTooManyRequests,
			fmt.Sprintf("rate limit of %v requests per second exceeded", cfg.RateLimit))
		return
	}

	delay, failed := h.draw(cfg)
	if failed && cfg.Mode == "async" {
		h.answerNow(w, r, hk, e, cfg.ErrorStatus, "simulated error")
		return
	}
	if cfg.Mode == "async" {
		h.serveAsync(w, r, hk, e, delay)
		return
	}
	status := cfg.Status
	if failed {
		status = cfg.ErrorStatus
	}
	h.serveSync(w, r, hk, e, cfg, delay, status, failed)
}

// serveSync holds the request for delay, then answers status.
func (h *Hub) serveSync(w http.ResponseWriter, r *http.Request, hk *hook, e *entry, cfg config.Webhook, delay time.Duration, status int, failed bool) {
	if !h.load.held.take(h.load.maxHeld) {
		h.refuse(w, r, hk, e, cfg, fmt.Sprintf("%d requests are held already, the most the server holds", h.load.maxHeld))
		return
	}
	e.held = true
	if !hk.begin(h, e) {
		h.load.held.release()
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "webhook: closed"})
		return
	}
	closing := false
	if delay > 0 {
		fired := make(chan struct{})
		t := h.clock.AfterFunc(delay, func() { close(fired) })
		select {
		case <-fired:
		case <-r.Context().Done():
			t.Stop()
			status = 0 // the client went away: nothing is answered
		case <-h.done:
			t.Stop()
			status, closing = http.StatusServiceUnavailable, true
		}
	}
	// End the record before answering, so a client that has the answer
	// sees the counts without it.
	hk.finish(h.clock, e, status)
	h.logRequest(r.Context(), e, status)
	switch {
	case status == 0:
	case closing:
		writeJSON(w, status, errorBody{Error: "webhook: closed"})
	case failed:
		writeJSON(w, status, errorBody{Error: "simulated error"})
	default:
		if cfg.ContentType != "" {
			w.Header().Set("Content-Type", cfg.ContentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, cfg.Body)
	}
}

// serveAsync answers 202 at once and keeps the work pending for delay.
func (h *Hub) serveAsync(w http.ResponseWriter, r *http.Request, hk *hook, e *entry, delay time.Duration) {
	if !h.load.pending.take(h.load.maxPending) {
		h.refuse(w, r, hk, e, hk.config(), fmt.Sprintf("%d async requests are pending already, the most the server keeps", h.load.maxPending))
		return
	}
	e.Status = http.StatusAccepted
	if !hk.beginAsync(h, e, delay) {
		h.load.pending.release()
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "webhook: closed"})
		return
	}
	h.logRequest(r.Context(), e, http.StatusAccepted)
	writeJSON(w, http.StatusAccepted, acceptedBody{Status: "accepted", ID: strconv.FormatUint(e.ID, 10)})
}

// refuse answers 503 for a request beyond MaxHeld or MaxPending, with a
// Retry-After of the webhook's latency: by then some have ended.
func (h *Hub) refuse(w http.ResponseWriter, r *http.Request, hk *hook, e *entry, cfg config.Webhook, why string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(cfg.Latency.D())))
	h.answerNow(w, r, hk, e, http.StatusServiceUnavailable, "webhook: "+why)
}

// answerNow records e as answered with status at once and writes msg.
func (h *Hub) answerNow(w http.ResponseWriter, r *http.Request, hk *hook, e *entry, status int, msg string) {
	hk.record(h.clock, e, status)
	h.logRequest(r.Context(), e, status)
	writeJSON(w, status, errorBody{Error: msg})
}

// draw picks the request's latency (latency plus uniform jitter in
// [0, jitter]) and whether it gets error_status.
func (h *Hub) draw(cfg config.Webhook) (time.Duration, bool) {
	delay := cfg.Latency.D()
	jitter := cfg.Jitter.D()
	roll := cfg.ErrorStatus != 0 && cfg.ErrorProbability > 0 && cfg.ErrorProbability < 1
	failed := cfg.ErrorStatus != 0 && cfg.ErrorProbability >= 1
	if jitter <= 0 && !roll {
		return delay, failed
	}
	h.rngMu.Lock()
	defer h.rngMu.Unlock()
	delay = withJitter(h.rng, delay, jitter)
	if roll {
		failed = h.rng.Float64() < cfg.ErrorProbability
	}
	return delay, failed
}

func (h *Hub) logRequest(ctx context.Context, e *entry, status int) {
	if !h.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	h.log.LogAttrs(ctx, slog.LevelDebug, "webhook request",
		slog.String("webhook", e.Webhook),
		slog.Uint64("id", e.ID),
		slog.String("mode", e.Mode),
		slog.Int("status", status),
		slog.Int("body_bytes", e.BodyBytes),
		slog.Int("header_bytes", e.HeaderBytes),
		slog.String("remote", e.Remote),
	)
}

// Close ends every held request (they get 503) and stops every pending
// timer; afterwards new requests get 503. It returns at once: the HTTP
// server waits for the handlers it released. Close is idempotent.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		// closed is set before any hook is locked: a request that begins
		// after the scan below sees it under the hook's lock and is refused.
		h.closed.Store(true)
		close(h.done)
		for _, hk := range h.list {
			hk.mu.RLock()
			var async []*entry
			for _, e := range hk.active {
				if !e.held {
					async = append(async, e)
				}
			}
			hk.mu.RUnlock()
			for _, e := range async {
				if e.timer != nil {
					e.timer.Stop()
				}
				hk.finish(h.clock, e, http.StatusAccepted)
			}
		}
	})
}

// hookName is the webhook name r addresses.
func hookName(r *http.Request) string {
	if v := r.PathValue("name"); v != "" {
		return v
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/webhook/"); ok {
		return rest
	}
	return strings.TrimPrefix(r.URL.Path, "/")
}

// readBody reads r's body into e, keeping its first 64 KiB and counting the
// rest. tooLarge reports a body over limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, e *entry) (tooLarge bool, err error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	kept, err := io.ReadAll(io.LimitReader(body, maxKeptBody))
	n := int64(len(kept))
	if err == nil {
		var rest int64
		rest, err = io.Copy(io.Discard, body)
		n += rest
	}
	e.Body = kept
	e.BodyBytes = int(n)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		if r.ContentLength > n {
			e.BodyBytes = int(r.ContentLength)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhook: read body: %w", err)
	}
	return false, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
