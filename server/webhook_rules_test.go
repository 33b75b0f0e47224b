package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/webhook"
)

// These tests drive rules keyed on the simulated webhook ([rules.match.webhook])
// end to end: real HTTP requests to POST /webhook/crm, held on a fake clock,
// and a pion/stun client's Binding over UDP and TCP. Nothing sleeps: a test
// learns that a request is held from the webhook's timer registration (the
// Hub counts a request before it schedules the request's end), that it
// ended from its HTTP answer, and only after a cancellation does it poll
// the Hub's counts, with a bound.

// whHook is the webhook these tests call, whLatency how long it holds a
// request (or keeps async work pending) on the fake clock.
const (
	whHook    = "crm"
	whLatency = 10 * time.Second
	// whWait bounds every wait for the server or a client.
	whWait = 5 * time.Second
)

const (
	whPlainBody  = `{"caller_id":"+15551230001"}`
	whTicketBody = `{"caller_id":"+15551230001","custom_attributes":{"ticket_id":"INC0012345"}}`
)

// hookClock is a fakeClock that reports each timer scheduled on it. Only the
// webhook schedules timers in these tests (one per held request and one per
// async request's pending work, each after the Hub has counted it), so a
// report means one more request counts in Inflight or Pending.
type hookClock struct {
	*fakeClock
	scheduled chan time.Duration
}

func newHookClock() *hookClock {
	return &hookClock{fakeClock: newFakeClock(), scheduled: make(chan time.Duration, 1024)}
}

// AfterFunc schedules f on the fake clock and reports d.
func (c *hookClock) AfterFunc(d time.Duration, f func()) faults.Timer {
	t := c.fakeClock.AfterFunc(d, f)
	c.scheduled <- d
	return t
}

// waitScheduled waits until n more timers have been scheduled.
func (c *hookClock) waitScheduled(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(whWait)
	defer deadline.Stop()
	for i := range n {
		select {
		case <-c.scheduled:
		case <-deadline.C:
			t.Fatalf("waited %v for webhook request %d of %d to be held or pending", whWait, i+1, n)
		}
	}
}

// whEnv is a server with a webhook "crm" on a hookClock and an HTTP client
// for it.
type whEnv struct {
	srv    *server.Server
	clk    *hookClock
	client *http.Client
}

// startWebhookRules starts a server whose only webhook is whHook in mode
// (held for whLatency), with rules active.
func startWebhookRules(t *testing.T, mode string, rules ...faults.Rule) *whEnv {
	t.Helper()
	cfg := testConfig()
	hook := config.Default().Webhooks["servicenow"]
	hook.Latency = faults.Duration(whLatency)
	hook.Mode = mode
	cfg.Webhooks = map[string]config.Webhook{whHook: hook}
	cfg.Rules = rules
	clk := newHookClock()
	srv := startServer(t, &cfg, server.WithClock(clk))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &whEnv{srv: srv, clk: clk, client: &http.Client{Transport: tr}}
}

// whCall is one webhook request in flight.
type whCall struct {
	cancel context.CancelFunc
	done   chan int // receives the answer's status, or 0 when the request failed
}

// post starts a POST of body (with header) to the webhook and returns at
// once. When the test ends the request is cancelled and waited for.
func (e *whEnv) post(t *testing.T, body string, header http.Header) *whCall {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.HTTPURL()+"/webhook/"+whHook, strings.NewReader(body))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Content-Type", "application/json")
	c := &whCall{cancel: cancel, done: make(chan int, 1)}
	go func() {
		res, err := e.client.Do(req)
		if err != nil {
			c.done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		c.done <- res.StatusCode
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// hold posts n requests with body and header and waits until the webhook
// holds each (sync) or has its work pending (async).
func (e *whEnv) hold(t *testing.T, n int, body string, header http.Header) []*whCall {
	t.Helper()
	calls := make([]*whCall, n)
	for i := range calls {
		calls[i] = e.post(t, body, header)
	}
	e.clk.waitScheduled(t, n)
	return calls
}

// answered waits for c's answer and checks its status.
func (c *whCall) answered(t *testing.T, want int) {
	t.Helper()
	select {
	case got := <-c.done:
		c.done <- got // keep it for the cleanup
		if got != want {
			t.Fatalf("webhook answered %d, want %d", got, want)
		}
	case <-time.After(whWait):
		t.Fatalf("webhook did not answer within %v", whWait)
	}
}

// waitInflight waits, woken by the Hub's own changes, until it holds want
// requests, for at most whWait.
func (e *whEnv) waitInflight(t *testing.T, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), whWait)
	defer cancel()
	hub := e.srv.Webhooks()
	if err := hub.Wait(ctx, func() bool { return hub.Inflight(whHook) == want }); err != nil {
		t.Fatalf("webhook holds %d requests after %v, want %d", hub.Inflight(whHook), whWait, want)
	}
}

// bindingCode performs a Binding with c and returns 0 for a success or the
// error response's code. A transaction that gets no answer fails the test.
func bindingCode(t *testing.T, c *stun.Client) int {
	t.Helper()
	res, err := stunBinding(t, c)
	if err != nil {
		t.Fatalf("Binding: %v", err)
	}
	if res.Type.Method != stun.MethodBinding {
		t.Fatalf("got %s, want a Binding response", res.Type)
	}
	return errorCode(t, res)
}

// wantBinding checks that a Binding gets want (0 = success) and that the
// journal agrees: no firing for a success, and for an error only rule's
// firings with that code.
func (e *whEnv) wantBinding(t *testing.T, c *stun.Client, want int, rule, when string) {
	t.Helper()
	seq := e.srv.Faults().Journal().LastSeq()
	if got := bindingCode(t, c); got != want {
		t.Fatalf("%s: Binding got %d, want %d (0 = success)", when, got, want)
	}
	// The client retransmits every 10 ms until it has an answer, so a slow
	// run may see the rule fire on a retransmission too: every entry must
	// be the rule's.
	entries := e.srv.Faults().Journal().Query(faults.Query{SinceSeq: seq})
	switch {
	case want == 0 && len(entries) != 0:
		t.Errorf("%s: the Binding passed but the journal has %+v", when, entries)
	case want != 0 && len(entries) == 0:
		t.Errorf("%s: the Binding got %d but the journal has no entry", when, want)
	}
	for _, en := range entries {
		if want != 0 && (en.Rule != rule || en.Code != want || en.Method != "binding") {
			t.Errorf("%s: journal entry %+v, want a %d on binding from %s", when, en, want, rule)
		}
	}
}

// whRule returns a rule that answers Binding requests with code while w
// holds.
func whRule(id string, code int, w faults.WebhookMatch) faults.Rule {
	w.Name = whHook
	return faults.Rule{
		ID:     id,
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}, Webhook: &w},
		Action: faults.Action{Type: "error", Code: code, Reason: "webhook fault"},
	}
}

// Each rule fails the Binding with its own code while its condition holds,
// and only then: requests that fall short of the condition are held first
// and the Binding passes, then the requests that meet it, and the Binding
// fails; once they end (the clock passes the latency, or their client
// cancels) the Binding passes again.
func TestWebhookRulesFailBindingWhileConditionHolds(t *testing.T) {
	t.Parallel()
	bigHeader := http.Header{"X-Custom-Attributes": {strings.Repeat("a", 3000)}}
	tests := []struct {
		name  string
		match faults.WebhookMatch
		code  int
		// below are held first and do not meet the condition; trigger are
		// held next and meet it.
		below, trigger int
		belowBody      string
		triggerBody    string
		triggerHeader  http.Header
		// cancel ends the condition by cancelling the trigger requests
		// (the below ones stay held); otherwise the clock passes the
		// latency and every request is answered.
		cancel bool
	}{
		{
			name:  "body content",
			match: faults.WebhookMatch{Body: `"ticket_id"`}, code: 403,
			below: 1, belowBody: whPlainBody, trigger: 1, triggerBody: whTicketBody,
		},
		{
			name:  "body size",
			match: faults.WebhookMatch{MinBodyBytes: 4096}, code: 486,
			below: 1, belowBody: strings.Repeat("x", 4095), trigger: 1, triggerBody: strings.Repeat("x", 4096),
		},
		{
			name:  "header bytes",
			match: faults.WebhookMatch{MinHeaderBytes: 2048}, code: 500,
			below: 1, belowBody: whPlainBody, trigger: 1, triggerBody: whPlainBody, triggerHeader: bigHeader,
			cancel: true,
		},
		{
			name:  "concurrent load",
			match: faults.WebhookMatch{MinInflight: 5}, code: 508,
			below: 4, belowBody: whPlainBody, trigger: 1, triggerBody: whPlainBody,
			cancel: true,
		},
		{
			name:  "concurrent load ends with the latency",
			match: faults.WebhookMatch{MinInflight: 5}, code: 508,
			below: 4, belowBody: whPlainBody, trigger: 1, triggerBody: whPlainBody,
		},
	}
	for _, tc := range tests {
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+transport, func(t *testing.T) {
				t.Parallel()
				rule := whRule("webhook-rule", tc.code, tc.match)
				e := startWebhookRules(t, "sync", rule)
				c := newSTUNClient(t, e.srv, transport)

				e.wantBinding(t, c, 0, rule.ID, "no request")
				below := e.hold(t, tc.below, tc.belowBody, nil)
				e.wantBinding(t, c, 0, rule.ID, "requests short of the condition held")
				trigger := e.hold(t, tc.trigger, tc.triggerBody, tc.triggerHeader)
				e.wantBinding(t, c, tc.code, rule.ID, "condition held")
				e.wantBinding(t, c, tc.code, rule.ID, "condition still held")

				if tc.cancel {
					for _, call := range trigger {
						call.cancel()
					}
					e.waitInflight(t, tc.below)
					e.wantBinding(t, c, 0, rule.ID, "trigger requests cancelled")
					return
				}
				e.clk.Advance(whLatency)
				for _, call := range append(below, trigger...) {
					call.answered(t, http.StatusCreated)
				}
				if n := e.srv.Webhooks().Inflight(whHook); n != 0 {
					t.Fatalf("webhook holds %d requests after answering them all", n)
				}
				e.wantBinding(t, c, 0, rule.ID, "every request answered")
			})
		}
	}
}

// A rule with a window still fires for a matching request that ended up to
// the window ago (both ends included), and stops after it.
func TestWebhookRuleWindowOutlivesTheRequest(t *testing.T) {
	t.Parallel()
	const window = 2 * time.Second
	rule := whRule("ticket-window", 403, faults.WebhookMatch{Body: `"ticket_id"`, Window: faults.Duration(window)})
	e := startWebhookRules(t, "sync", rule)
	c := newSTUNClient(t, e.srv, "udp")

	call := e.hold(t, 1, whTicketBody, nil)[0]
	e.wantBinding(t, c, 403, rule.ID, "ticket request held")
	e.clk.Advance(whLatency)
	call.answered(t, http.StatusCreated)
	e.wantBinding(t, c, 403, rule.ID, "ticket request just ended")
	e.clk.Advance(window)
	e.wantBinding(t, c, 403, rule.ID, "ticket request ended exactly the window ago")
	e.clk.Advance(time.Nanosecond)
	e.wantBinding(t, c, 0, rule.ID, "ticket request ended more than the window ago")
}

// In async mode a request is answered 202 at once and its work stays
// pending: a min_inflight rule (held requests) does not fire, a min_pending
// rule does. The same call in sync mode is held, and the min_inflight rule
// fires. That is the screen-pop fix: make the webhook asynchronous.
func TestWebhookRuleAsyncIsPendingNotInflight(t *testing.T) {
	t.Parallel()
	held := whRule("held", 403, faults.WebhookMatch{MinInflight: 1})
	held.Priority = 1 // runs first: it would win were it to match
	pending := whRule("pending", 486, faults.WebhookMatch{MinPending: 1})
	pending.Priority = 2
	e := startWebhookRules(t, "async", held, pending)
	c := newSTUNClient(t, e.srv, "udp")

	call := e.hold(t, 1, whTicketBody, nil)[0]
	call.answered(t, http.StatusAccepted)
	if got, want := [2]int{e.srv.Webhooks().Inflight(whHook), e.srv.Webhooks().Pending(whHook)}, [2]int{0, 1}; got != want {
		t.Fatalf("async request: inflight, pending = %v, want %v", got, want)
	}
	e.wantBinding(t, c, 486, pending.ID, "async work pending")
	e.clk.Advance(whLatency) // runs the pending work's end before returning
	e.wantBinding(t, c, 0, "", "async work done")
	if n := e.srv.Faults().Journal().Count(faults.Query{Rule: held.ID}); n != 0 {
		t.Errorf("%s fired %d times in async mode, want 0", held.ID, n)
	}

	mode := "sync"
	if err := e.srv.Webhooks().Set(whHook, webhook.Settings{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	call = e.hold(t, 1, whTicketBody, nil)[0]
	e.wantBinding(t, c, 403, held.ID, "sync request held")
	e.clk.Advance(whLatency)
	call.answered(t, http.StatusCreated)
	e.wantBinding(t, c, 0, "", "sync request answered")
}
