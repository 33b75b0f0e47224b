package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

const ticketBody = `{"ticket_id":"INC0010001"}`

// servicenow is the default config's webhook.
func servicenow() config.Webhook {
	return config.Webhook{
		Latency:          faults.Duration(150 * time.Millisecond),
		Mode:             "sync",
		Status:           201,
		Body:             `{"result":{"number":"INC0010001"}}`,
		ContentType:      "application/json",
		MaxBodyBytes:     1 << 20,
		ErrorProbability: 1,
	}
}

// fixture is a Hub on a fake clock behind an httptest server.
type fixture struct {
	hub   *webhook.Hub
	clock *fakeClock
	srv   *httptest.Server
}

func newFixture(t *testing.T, hooks map[string]config.Webhook) *fixture {
	t.Helper()
	clock := newFakeClock()
	hub := webhook.New(hooks, webhook.Options{Clock: clock, Seed: 1})
	srv := httptest.NewServer(hub)
	// Cleanups run last first: Close releases held requests, then the
	// server waits for their handlers.
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	return &fixture{hub: hub, clock: clock, srv: srv}
}

func (f *fixture) url(name string) string { return f.srv.URL + "/webhook/" + name }

// response is what a test keeps of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
	err    error
}

func (f *fixture) do(ctx context.Context, method, name, body string) response {
	req, err := http.NewRequestWithContext(ctx, method, f.url(name), strings.NewReader(body))
	if err != nil {
		return response{err: err}
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// post sends a POST and waits for its answer.
func (f *fixture) post(t *testing.T, name, body string) response {
	t.Helper()
	r := f.do(context.Background(), http.MethodPost, name, body)
	if r.err != nil {
		t.Fatalf("POST %s: %v", name, r.err)
	}
	return r
}

// postAsync sends a POST in the background; its answer arrives on the channel.
func (f *fixture) postAsync(ctx context.Context, name, body string) <-chan response {
	ch := make(chan response, 1)
	go func() { ch <- f.do(ctx, http.MethodPost, name, body) }()
	return ch
}

func receive(t *testing.T, ch <-chan response) response {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after 10s")
		return response{}
	}
}

func notYet(t *testing.T, ch <-chan response) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("answered before the latency passed: %d %q", r.status, r.body)
	default:
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds. It is
// for conditions no event announces (a client going away).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not after 10s", what)
		}
	}
}

func wantCounts(t *testing.T, hub *webhook.Hub, name string, inflight, pending int) {
	t.Helper()
	if got := hub.Inflight(name); got != inflight {
		t.Errorf("Inflight(%q) = %d, want %d", name, got, inflight)
	}
	if got := hub.Pending(name); got != pending {
		t.Errorf("Pending(%q) = %d, want %d", name, got, pending)
	}
}

func TestSyncHoldsForLatency(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	ch := f.postAsync(context.Background(), "servicenow", ticketBody)
	f.clock.waitArmed(t, 1)
	wantCounts(t, f.hub, "servicenow", 1, 1)
	wantCounts(t, f.hub, "", 1, 1)

	f.clock.Advance(149 * time.Millisecond)
	notYet(t, ch)
	wantCounts(t, f.hub, "servicenow", 1, 1)
	if recs := f.hub.Records("servicenow"); len(recs) != 1 || !recs[0].End.IsZero() {
		t.Fatalf("records while held = %+v, want one with a zero End", recs)
	}

	f.clock.Advance(time.Millisecond)
	r := receive(t, ch)
	if r.status != 201 || r.body != servicenow().Body || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("answer = %d %q (%s), want 201 %q (application/json)", r.status, r.body, r.header.Get("Content-Type"), servicenow().Body)
	}
	wantCounts(t, f.hub, "servicenow", 0, 0)
	recs := f.hub.Records("servicenow")
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	rec := recs[0]
	if held := rec.End.Sub(rec.Start); held != 150*time.Millisecond {
		t.Errorf("held for %v, want 150ms", held)
	}
	if rec.Status != 201 || rec.Mode != "sync" || string(rec.Body) != ticketBody || rec.Webhook != "servicenow" || rec.Remote == "" {
		t.Errorf("record = %+v", rec)
	}
}

func TestAsyncAnswersAtOnceAndStaysPending(t *testing.T) {
	hook := servicenow()
	hook.Mode = "async"
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})

	r := f.post(t, "servicenow", ticketBody) // the clock has not moved
	if r.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", r.status)
	}
	var body struct{ Status, ID string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Status != "accepted" || body.ID == "" {
		t.Errorf("body = %q (%v), want {\"status\":\"accepted\",\"id\":...}", r.body, err)
	}
	wantCounts(t, f.hub, "servicenow", 0, 1)
	if recs := f.hub.Records("servicenow"); len(recs) != 1 || !recs[0].End.IsZero() || recs[0].Status != 202 {
		t.Fatalf("records while pending = %+v, want one 202 with a zero End", recs)
	}

	f.clock.Advance(149 * time.Millisecond)
	wantCounts(t, f.hub, "servicenow", 0, 1)
	f.clock.Advance(time.Millisecond)
	wantCounts(t, f.hub, "servicenow", 0, 0)
	rec := f.hub.Records("servicenow")[0]
	if d := rec.End.Sub(rec.Start); d != 150*time.Millisecond {
		t.Errorf("pending for %v, want 150ms", d)
	}
}

func TestRejections(t *testing.T) {
	small := servicenow()
	small.Latency = 0
	small.MaxBodyBytes = 10
	limited := servicenow()
	limited.Latency = 0
	limited.RateLimit = 1
	slow := servicenow()
	slow.Latency = 0
	slow.RateLimit = 0.4 // burst 1, a token every 2.5s
	f := newFixture(t, map[string]config.Webhook{"small": small, "limited": limited, "slow": slow})

	tests := []struct {
		name, method, hook, body string
		before                   int // requests sent first, answered normally
		status                   int
		header, headerValue      string
		bodyHas                  string
		recorded                 bool
	}{
		{name: "unknown", method: "POST", hook: "crm", status: 404, bodyHas: `unknown webhook \"crm\" (have limited, slow, small)`},
		{name: "get", method: "GET", hook: "small", status: 405, header: "Allow", headerValue: "POST"},
		{name: "too large", method: "POST", hook: "small", body: "12345678901", status: 413, recorded: true},
		{name: "limit fits", method: "POST", hook: "small", body: "1234567890", status: 201, recorded: true},
		{name: "rate", method: "POST", hook: "limited", before: 1, status: 429, header: "Retry-After", headerValue: "1", recorded: true},
		{name: "rate rounds up", method: "POST", hook: "slow", before: 1, status: 429, header: "Retry-After", headerValue: "3", recorded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range tt.before {
				if r := f.post(t, tt.hook, "x"); r.status != 201 {
					t.Fatalf("request before: status %d, want 201", r.status)
				}
			}
			n := len(f.hub.Records(tt.hook))
			r := f.do(context.Background(), tt.method, tt.hook, tt.body)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != tt.status {
				t.Errorf("status = %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if tt.header != "" && r.header.Get(tt.header) != tt.headerValue {
				t.Errorf("%s = %q, want %q", tt.header, r.header.Get(tt.header), tt.headerValue)
			}
			if !strings.Contains(r.body, tt.bodyHas) {
				t.Errorf("body = %q, want it to contain %q", r.body, tt.bodyHas)
			}
			recs := f.hub.Records(tt.hook)
			if got := len(recs) - n; got != map[bool]int{true: 1}[tt.recorded] {
				t.Fatalf("%d new records, want recorded=%v", got, tt.recorded)
			}
			if tt.recorded {
				rec := recs[len(recs)-1]
				if rec.Status != tt.status || rec.BodyBytes != len(tt.body) || rec.End.IsZero() {
					t.Errorf("record = %+v, want status %d, %d body bytes, ended", rec, tt.status, len(tt.body))
				}
			}
		})
	}
}

func TestRateLimitRefills(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	hook.RateLimit = 2 // burst 2
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})
	var got []int
	for range 3 {
		got = append(got, f.post(t, "servicenow", "").status)
	}
	f.clock.Advance(500 * time.Millisecond) // one token back
	got = append(got, f.post(t, "servicenow", "").status, f.post(t, "servicenow", "").status)
	want := []int{201, 201, 429, 201, 429}
	if !equalInts(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	stats := f.hub.Stats()["servicenow"]
	if stats.Requests != 5 || stats.Statuses[201] != 3 || stats.Statuses[429] != 2 {
		t.Errorf("stats = %+v, want 5 requests: 3 201 and 2 429", stats)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestErrorStatus(t *testing.T) {
	syncErr := servicenow()
	syncErr.ErrorStatus = 503
	asyncErr := syncErr
	asyncErr.Mode = "async"
	never := syncErr
	never.Latency = 0
	never.ErrorProbability = 0
	f := newFixture(t, map[string]config.Webhook{"sync": syncErr, "async": asyncErr, "never": never})

	// Sync: the error comes after the latency, as the answer would.
	ch := f.postAsync(context.Background(), "sync", "")
	f.clock.waitArmed(t, 1)
	wantCounts(t, f.hub, "sync", 1, 1)
	f.clock.Advance(150 * time.Millisecond)
	if r := receive(t, ch); r.status != 503 {
		t.Errorf("sync: status = %d, want 503", r.status)
	}
	// Async: the error comes at once, with no work pending.
	if r := f.post(t, "async", ""); r.status != 503 {
		t.Errorf("async: status = %d, want 503", r.status)
	}
	wantCounts(t, f.hub, "async", 0, 0)
	// Probability 0: never.
	if r := f.post(t, "never", ""); r.status != 201 {
		t.Errorf("probability 0: status = %d, want 201", r.status)
	}
}

func TestErrorProbabilityIsSeeded(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	hook.ErrorStatus = 500
	hook.ErrorProbability = 0.5
	statuses := func(seed uint64) []int {
		hub := webhook.New(map[string]config.Webhook{"servicenow": hook}, webhook.Options{Clock: newFakeClock(), Seed: seed})
		defer hub.Close()
		var out []int
		for range 40 {
			w := httptest.NewRecorder()
			hub.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/webhook/servicenow", nil))
			out = append(out, w.Code)
		}
		return out
	}
	a, b := statuses(7), statuses(7)
	if !equalInts(a, b) {
		t.Errorf("same seed, different draws:\n%v\n%v", a, b)
	}
	n := 0
	for _, s := range a {
		if s == 500 {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Errorf("%d of %d requests failed with probability 0.5", n, len(a))
	}
}

// TestByteCounts sends a request whose every byte the test controls and
// checks the counts against ones worked out by hand.
func TestByteCounts(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})

	const body = `{"ticket_id":"INC0010001"}` // 26 bytes
	raw := "POST /webhook/servicenow HTTP/1.1\r\n" +
		"Host: crm.example\r\n" + // 4 + 11 + 4 = 19
		"User-Agent: flow/1\r\n" + // 10 + 6 + 4 = 20
		"Content-Type: application/json\r\n" + // 12 + 16 + 4 = 32
		"Content-Length: 26\r\n" + // 14 + 2 + 4 = 20
		"X-Ticket: a\r\n" + // 8 + 1 + 4 = 13
		"X-Ticket: bc\r\n" + // 8 + 2 + 4 = 14
		"Connection: close\r\n" + // 10 + 5 + 4 = 19
		"\r\n" + body
	const wantHeader = 19 + 20 + 32 + 20 + 13 + 14 + 19 // 137

	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status = %d, want 201", resp.StatusCode)
	}
	rec := f.hub.Records("servicenow")[0]
	if rec.HeaderBytes != wantHeader {
		t.Errorf("HeaderBytes = %d, want %d", rec.HeaderBytes, wantHeader)
	}
	if rec.BodyBytes != 26 || string(rec.Body) != body {
		t.Errorf("body = %d bytes %q, want 26 bytes %q", rec.BodyBytes, rec.Body, body)
	}
}

func TestBigBodyKeepsFirst64KiB(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})
	big := strings.Repeat("a", 100_000)
	if r := f.post(t, "servicenow", big); r.status != 201 {
		t.Fatalf("status = %d, want 201", r.status)
	}
	rec := f.hub.Records("servicenow")[0]
	if rec.BodyBytes != 100_000 || len(rec.Body) != 64<<10 {
		t.Errorf("BodyBytes = %d, kept %d, want 100000 and 65536", rec.BodyBytes, len(rec.Body))
	}
}

func TestInflightExactUnderConcurrency(t *testing.T) {
	const n = 50
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	chans := make([]<-chan response, n)
	for i := range chans {
		chans[i] = f.postAsync(context.Background(), "servicenow", ticketBody)
	}
	f.clock.waitArmed(t, n)
	wantCounts(t, f.hub, "servicenow", n, n)
	wantCounts(t, f.hub, "", n, n)
	if !f.hub.Recent("servicenow", faults.WebhookQuery{Body: mustPattern(t, "ticket_id")}) {
		t.Error("Recent = false with 50 matching requests held")
	}

	f.clock.Advance(150 * time.Millisecond)
	for _, ch := range chans {
		if r := receive(t, ch); r.status != 201 {
			t.Errorf("status = %d, want 201", r.status)
		}
	}
	wantCounts(t, f.hub, "servicenow", 0, 0)
	if got := f.hub.Stats()["servicenow"].Statuses[201]; got != n {
		t.Errorf("Stats 201 count = %d, want %d", got, n)
	}
}

func TestRecentWindowEdge(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})
	f.post(t, "servicenow", ticketBody) // ends at T, the clock's now
	const w = 5 * time.Second
	ticket := mustPattern(t, `"ticket_id"`)

	tests := []struct {
		name    string
		advance time.Duration // from the previous row
		q       faults.WebhookQuery
		want    bool
	}{
		{"at T, window 0: held now only", 0, faults.WebhookQuery{Body: ticket}, false},
		{"at T", 0, faults.WebhookQuery{Body: ticket, Window: w}, true},
		{"other body", 0, faults.WebhookQuery{Body: mustPattern(t, "custom_attr"), Window: w}, false},
		{"min body bytes met", 0, faults.WebhookQuery{MinBodyBytes: 26, Window: w}, true},
		{"min body bytes not met", 0, faults.WebhookQuery{MinBodyBytes: 27, Window: w}, false},
		{"min header bytes not met", 0, faults.WebhookQuery{MinHeaderBytes: 10_000, Window: w}, false},
		{"at T+W", w, faults.WebhookQuery{Body: ticket, Window: w}, true},
		{"at T+W+1ns", time.Nanosecond, faults.WebhookQuery{Body: ticket, Window: w}, false},
	}
	for _, tt := range tests {
		f.clock.Advance(tt.advance)
		if got := f.hub.Recent("servicenow", tt.q); got != tt.want {
			t.Errorf("%s: Recent = %v, want %v", tt.name, got, tt.want)
		}
		if got := f.hub.Recent("", tt.q); got != tt.want {
			t.Errorf("%s: Recent(\"\") = %v, want %v", tt.name, got, tt.want)
		}
	}
	if f.hub.Recent("nope", faults.WebhookQuery{Window: time.Hour}) {
		t.Error("Recent on an unknown webhook = true")
	}
}

func TestRecentWhilePending(t *testing.T) {
	hook := servicenow()
	hook.Mode = "async"
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})
	q := faults.WebhookQuery{Body: mustPattern(t, "INC")}
	if f.hub.Recent("servicenow", q) {
		t.Fatal("Recent before any request = true")
	}
	f.post(t, "servicenow", ticketBody)
	if !f.hub.Recent("servicenow", q) {
		t.Error("Recent while pending = false")
	}
	f.clock.Advance(150 * time.Millisecond)
	if f.hub.Recent("servicenow", q) {
		t.Error("Recent after the work ended, window 0 = true")
	}
}

func TestClientGoneEndsHold(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	ctx, cancel := context.WithCancel(context.Background())
	ch := f.postAsync(ctx, "servicenow", "")
	f.clock.waitArmed(t, 1)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", r.err)
	}
	waitFor(t, "Inflight back to 0", func() bool { return f.hub.Inflight("servicenow") == 0 })
	waitFor(t, "the record ended", func() bool {
		recs := f.hub.Records("servicenow")
		return len(recs) == 1 && !recs[0].End.IsZero()
	})
	if rec := f.hub.Records("servicenow")[0]; rec.Status != 0 {
		t.Errorf("Status = %d, want 0 (nothing answered)", rec.Status)
	}
	if f.clock.armed() != 0 {
		t.Error("the latency timer was not stopped")
	}
}

func TestCloseReleasesHeldAndPending(t *testing.T) {
	async := servicenow()
	async.Mode = "async"
	f := newFixture(t, map[string]config.Webhook{"sync": servicenow(), "async": async})
	ch := f.postAsync(context.Background(), "sync", "")
	f.clock.waitArmed(t, 1)
	f.post(t, "async", "")
	wantCounts(t, f.hub, "", 1, 2)

	f.hub.Close()
	if r := receive(t, ch); r.status != 503 {
		t.Errorf("held request: status = %d, want 503", r.status)
	}
	wantCounts(t, f.hub, "", 0, 0)
	if n := f.clock.armed(); n != 0 {
		t.Errorf("%d timers still armed after Close", n)
	}
	if r := f.post(t, "sync", ""); r.status != 503 {
		t.Errorf("after Close: status = %d, want 503", r.status)
	}
	f.hub.Close() // idempotent
}

func TestSet(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	zero := faults.Duration(0)
	async, sync := "async", "sync"
	status := 200

	// Latency 0: the next request is answered without the clock moving.
	if err := f.hub.Set("servicenow", webhook.Settings{Latency: &zero, Status: &status}); err != nil {
		t.Fatal(err)
	}
	if r := f.post(t, "servicenow", ""); r.status != 200 {
		t.Errorf("after latency 0, status 200: status = %d", r.status)
	}
	// Async: 202 at once.
	if err := f.hub.Set("servicenow", webhook.Settings{Mode: &async}); err != nil {
		t.Fatal(err)
	}
	if r := f.post(t, "servicenow", ""); r.status != 202 {
		t.Errorf("after mode async: status = %d, want 202", r.status)
	}

	// Synthetic load counts as pending in async mode, held too in sync mode.
	three, none := 3, 0
	if err := f.hub.Set("servicenow", webhook.Settings{SyntheticPending: &three}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, f.hub, "servicenow", 0, 3)
	if err := f.hub.Set("servicenow", webhook.Settings{Mode: &sync}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, f.hub, "servicenow", 3, 3)
	wantCounts(t, f.hub, "", 3, 3)
	if !f.hub.Recent("servicenow", faults.WebhookQuery{}) {
		t.Error("Recent with synthetic load and an empty query = false")
	}
	if f.hub.Recent("servicenow", faults.WebhookQuery{MinBodyBytes: 1}) {
		t.Error("Recent with synthetic load and a body condition = true")
	}
	if s := f.hub.Stats()["servicenow"]; s.Synthetic != 3 || s.Mode != "sync" {
		t.Errorf("stats = %+v, want 3 synthetic in sync mode", s)
	}
	if err := f.hub.Set("servicenow", webhook.Settings{SyntheticPending: &none}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, f.hub, "servicenow", 0, 0)
}

func TestSetErrors(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"servicenow": servicenow()})
	neg := faults.Duration(-time.Second)
	bad, status, many := "later", 700, webhook.MaxSynthetic+1
	tests := []struct {
		name   string
		hook   string
		s      webhook.Settings
		fields []string
	}{
		{name: "latency", hook: "servicenow", s: webhook.Settings{Latency: &neg}, fields: []string{"latency"}},
		{name: "mode", hook: "servicenow", s: webhook.Settings{Mode: &bad}, fields: []string{"mode"}},
		{name: "status and synthetic", hook: "servicenow", s: webhook.Settings{Status: &status, SyntheticPending: &many}, fields: []string{"status", "synthetic_pending"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.hub.Set(tt.hook, tt.s)
			var got []string
			for _, fe := range faults.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields = %v, want %v (err %v)", got, tt.fields, err)
			}
		})
	}
	err := f.hub.Set("crm", webhook.Settings{})
	if !errors.Is(err, webhook.ErrUnknownWebhook) || !strings.Contains(err.Error(), "servicenow") {
		t.Errorf("unknown name: err = %v, want ErrUnknownWebhook naming servicenow", err)
	}
	// Nothing changed: the next request is still held for 150ms.
	ch := f.postAsync(context.Background(), "servicenow", "")
	f.clock.waitArmed(t, 1)
	f.clock.Advance(150 * time.Millisecond)
	if r := receive(t, ch); r.status != 201 {
		t.Errorf("status = %d, want 201", r.status)
	}
}

func TestRecordsKeepsHistory(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	clock := newFakeClock()
	hub := webhook.New(map[string]config.Webhook{"servicenow": hook}, webhook.Options{Clock: clock, History: 3})
	defer hub.Close()
	for i := range 5 {
		w := httptest.NewRecorder()
		hub.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/webhook/servicenow", bytes.NewReader([]byte{'0' + byte(i)})))
	}
	var got string
	for _, r := range hub.Records("servicenow") {
		got += string(r.Body)
	}
	if got != "234" {
		t.Errorf("bodies kept = %q, want the newest 3, oldest first: %q", got, "234")
	}
	if s := hub.Stats()["servicenow"]; s.Requests != 5 {
		t.Errorf("Requests = %d, want 5", s.Requests)
	}
}

// TestSignalsUnderLoad checks the counts stay exact while requests come and
// go from many goroutines, with the packet path reading them (-race).
func TestSignalsUnderLoad(t *testing.T) {
	hook := servicenow()
	hook.Latency = 0
	async := hook
	async.Mode = "async"
	f := newFixture(t, map[string]config.Webhook{"sync": hook, "async": async})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		q := faults.WebhookQuery{Body: mustPattern(t, "ticket"), Window: time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = f.hub.Inflight("")
			_ = f.hub.Pending("sync")
			_ = f.hub.Recent("", q)
		}
	})
	var senders sync.WaitGroup
	for range 20 {
		senders.Go(func() {
			for range 10 {
				for _, name := range []string{"sync", "async"} {
					if r := f.do(context.Background(), http.MethodPost, name, ticketBody); r.err != nil {
						t.Error(r.err)
					}
				}
			}
		})
	}
	senders.Wait()
	close(stop)
	wg.Wait()
	wantCounts(t, f.hub, "", 0, 0)
	for _, name := range []string{"sync", "async"} {
		if n := f.hub.Stats()[name].Requests; n != 200 {
			t.Errorf("%s: %d requests recorded, want 200", name, n)
		}
	}
}

// TestSignalsDoNotAllocate guards the packet path: the engine calls the
// Signals for every packet a webhook rule looks at.
func TestSignalsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	hook := servicenow()
	hook.Latency = 0
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook, "crm": hook})
	for range 20 {
		f.post(t, "servicenow", ticketBody)
	}
	q := faults.WebhookQuery{Body: mustPattern(t, `custom_attributes`), MinBodyBytes: 1, Window: time.Hour}
	allocs := testing.AllocsPerRun(100, func() {
		_ = f.hub.Inflight("servicenow")
		_ = f.hub.Pending("")
		_ = f.hub.Recent("servicenow", q)
		_ = f.hub.Recent("", q)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}

func BenchmarkRecent(b *testing.B) {
	hook := servicenow()
	hook.Latency = 0
	hub := webhook.New(map[string]config.Webhook{"servicenow": hook}, webhook.Options{Clock: newFakeClock()})
	defer hub.Close()
	for range webhook.DefaultHistory {
		hub.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/webhook/servicenow", strings.NewReader(ticketBody)))
	}
	q := faults.WebhookQuery{Body: mustPattern(b, `custom_attributes`), Window: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		hub.Recent("servicenow", q)
	}
}

func TestJitterAddsUpToJitter(t *testing.T) {
	hook := servicenow()
	hook.Latency = faults.Duration(100 * time.Millisecond)
	hook.Jitter = faults.Duration(50 * time.Millisecond)
	f := newFixture(t, map[string]config.Webhook{"servicenow": hook})
	for range 5 {
		ch := f.postAsync(context.Background(), "servicenow", "")
		f.clock.waitArmed(t, 1)
		f.clock.Advance(100*time.Millisecond - time.Nanosecond)
		notYet(t, ch)
		f.clock.Advance(50*time.Millisecond + time.Nanosecond)
		receive(t, ch)
	}
	for _, r := range f.hub.Records("servicenow") {
		if d := r.End.Sub(r.Start); d < 100*time.Millisecond || d > 150*time.Millisecond {
			t.Errorf("held for %v, want 100ms to 150ms", d)
		}
	}
}

// Wait wakes on the Hub's own changes: a request being held, and ending.
func TestWaitWakesOnCountChanges(t *testing.T) {
	f := newFixture(t, map[string]config.Webhook{"crm": {Latency: faults.Duration(time.Second), Mode: "sync", Status: 201}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held := func() bool { return f.hub.Inflight("crm") == 1 }
	res := f.postAsync(context.Background(), "crm", "{}")
	if err := f.hub.Wait(ctx, held); err != nil {
		t.Fatalf("Wait for the held request: %v", err)
	}
	f.clock.Advance(time.Second)
	if err := f.hub.Wait(ctx, func() bool { return f.hub.Inflight("crm") == 0 }); err != nil {
		t.Fatalf("Wait for the end of the request: %v", err)
	}
	if r := <-res; r.status != 201 {
		t.Errorf("status %d, want 201", r.status)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := f.hub.Wait(short, held); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on a condition that never holds: %v, want DeadlineExceeded", err)
	}
}

func mustPattern(tb testing.TB, expr string) *faults.Pattern {
	tb.Helper()
	p, err := faults.CompilePattern(expr)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
