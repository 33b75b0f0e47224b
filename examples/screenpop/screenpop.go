package main

import (
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/internal/gather"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/webhook"
)

// defaultConfig is screenpop.toml, the config run uses unless told otherwise.
//
//go:embed screenpop.toml
var defaultConfig []byte

// hookName is the webhook the contact flow calls: [webhooks.servicenow].
const hookName = "servicenow"

// The payloads the flow sends on conversation start. The simplified one is
// what works; the ticket one carries the custom attributes (a ticket ID) the
// screen pop needs, and is what breaks the softphone.
const (
	simplifiedPayload = `{"short_description":"Inbound call from +15551230001","caller_id":"+15551230001",` +
		`"conversation_id":"5f0c2a8e-1d3b-4c9a-9e2f-7a6b1c0d4e31","queue":"Support"}`
	ticketPayload = `{"short_description":"Inbound call from +15551230001","caller_id":"+15551230001",` +
		`"conversation_id":"5f0c2a8e-1d3b-4c9a-9e2f-7a6b1c0d4e31","queue":"Support",` +
		`"custom_attributes":{"ticket_id":"INC0012345","u_category":"billing"}}`
)

// The bounded waits between a step's moves: run waits on the Hub's own
// changes (webhook.Hub.Wait) for at most waitLimit (loopback requests are
// held within milliseconds; the limit only turns a bug into an error
// instead of a hang).
const (
	waitLimit = 5 * time.Second
	// gatherLimit bounds one ICE gathering. pion ends a Binding on the first
	// error response and stunfault answers on loopback at once, so a
	// gathering takes well under a second either way.
	gatherLimit = 10 * time.Second
	// stunTimeout bounds each Binding transaction of a gathering. A refused
	// or answered Binding ends at once; the bound only matters for a lost
	// one, and is generous so that a loaded machine does not turn a slow
	// answer into a missing srflx candidate.
	stunTimeout = 2 * time.Second
)

// options are run's inputs.
type options struct {
	// config is the stunfault config (TOML); configName names it in errors.
	config     []byte
	configName string
	// log receives stunfault's and pion's logs; nil discards them.
	log *slog.Logger
}

// Step is the outcome of one step of the story.
type Step struct {
	// Name is the step's number and title, as printed ("2 ticket call").
	Name string
	// Scenario is the rule set that was active.
	Scenario string
	// Mode is the webhook's mode during the step ("sync" or "async").
	Mode string
	// Calls is how many webhook calls the flow made; Held how many of them
	// the webhook held open while the softphone gathered, and Pending how
	// many were held or had async work in progress.
	Calls, Held, Pending int
	// Srflx are the srflx candidates' addresses; Relay and Host count the
	// relay and host candidates.
	Srflx       []string
	Relay, Host int
	// Forbidden counts the 403 answers the journal recorded during the step.
	Forbidden int
	// Rules are the IDs of the rules that fired during the step, sorted.
	Rules []string
}

// plan is what one step does.
type plan struct {
	name     string // number and title
	scenario string
	mode     string // webhook mode to set before the calls ("" = leave it)
	calls    int
	body     string
	payload  string      // what the body is, for the transcript
	header   http.Header // extra request headers
	why      string      // the hypothesis, for the transcript
	note     string      // printed after the outcome
}

// run starts a stunfault from opts.config on free loopback ports, tells the
// five steps of the screen-pop story to w and returns their outcomes. It
// returns when the story is told, or early with ctx's error when ctx ends.
func run(ctx context.Context, w io.Writer, opts options) (steps []Step, err error) {
	cfg, err := config.Parse(opts.config, opts.configName)
	if err != nil {
		return nil, err
	}
	if err := cfg.ListenOnFreePorts(); err != nil {
		return nil, err
	}
	hook, ok := cfg.Webhooks[hookName]
	if !ok {
		return nil, fmt.Errorf("%s: no [webhooks.%s]", opts.configName, hookName)
	}
	plans, err := storyPlans(cfg, opts.configName)
	if err != nil {
		return nil, err
	}

	var srvOpts []server.Option
	if opts.log != nil {
		srvOpts = append(srvOpts, server.WithLogger(opts.log))
	}
	srv, err := server.New(cfg, srvOpts...)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, srv.Close()) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s := &story{srv: srv, w: w, http: &http.Client{Transport: tr}, log: opts.log}

	fmt.Fprintf(w, "stunfault (%s) on stun:%s and turn:%s, webhooks on %s/webhook/%s\n",
		opts.configName, srv.STUNAddr(), srv.STUNAddr(), srv.HTTPURL(), hookName)
	fmt.Fprintf(w, "webhook %s: %s, latency %v: a sync call stays held open while the softphone gathers\n",
		hookName, hook.Mode, hook.Latency)

	for _, p := range plans {
		st, err := s.step(ctx, p)
		if err != nil {
			return steps, fmt.Errorf("step %s: %w", p.name, err)
		}
		steps = append(steps, st)
	}
	printSummary(w, steps)
	return steps, nil
}

// printSummary prints one line per step.
func printSummary(w io.Writer, steps []Step) {
	fmt.Fprintln(w, "\n== summary")
	for _, st := range steps {
		srflx := "srflx yes"
		if len(st.Srflx) == 0 {
			srflx = "srflx no "
		}
		fmt.Fprintf(w, "  %-32s %-9s %-5s held %2d  %s  403s %d  rules %s\n",
			st.Name, st.Scenario, st.Mode, st.Held, srflx, st.Forbidden, strings.Join(st.Rules, ","))
	}
}

// storyPlans returns the story's steps. The header and load steps read their
// thresholds from the config's rules, so a config with other numbers still
// crosses them.
func storyPlans(cfg config.Config, name string) ([]plan, error) {
	for _, sc := range []string{"payload", "header", "load", "blocking"} {
		if _, ok := cfg.Scenarios[sc]; !ok {
			return nil, fmt.Errorf("%s: no [scenarios.%s]", name, sc)
		}
	}
	headerMin := webhookMatch(cfg, "header").MinHeaderBytes
	if headerMin <= 0 {
		return nil, fmt.Errorf("%s: scenario header has no rule with match.webhook.min_header_bytes", name)
	}
	loadN := webhookMatch(cfg, "load").MinInflight
	if loadN <= 0 {
		return nil, fmt.Errorf("%s: scenario load has no rule with match.webhook.min_inflight", name)
	}
	fewer := max(1, loadN/4)
	injected := injectedHeader(headerMin)

	const simplified = "the simplified payload (no custom attributes)"
	const ticket = "the payload with custom_attributes.ticket_id = INC0012345"
	return []plan{
		{
			name: "1 baseline call", scenario: "payload", mode: "sync", calls: 1,
			body: simplifiedPayload, payload: simplified,
			why: "the flow calls the CRM with the payload that is known to work",
		},
		{
			name: "2 ticket call", scenario: "payload", calls: 1,
			body: ticketPayload, payload: ticket,
			why: "hypothesis: the payload. The same call with the ticket ID the screen pop needs",
			note: "A browser reports this as icecandidateerror with errorCode 3 (403 mod 100), errorText \"Forbidden\"\n" +
				"and url stun:IP:PORT. The variant, a 403 on the authenticated TURN Allocate, shows errorCode 403\n" +
				"with errorText \"TURN allocate error.\" (Chromium; pion/webrtc has no icecandidateerror).",
		},
		{
			name: "3 header hypothesis", scenario: "header", calls: 1,
			body: simplifiedPayload, payload: simplified,
			header: http.Header{"X-Custom-Attributes": {injected}},
			why: fmt.Sprintf("hypothesis: an injected header. The simplified payload, but the flow injects X-Custom-Attributes (%d bytes),\n"+
				"pushing the request header over the rule's %d bytes", len(injected), headerMin),
		},
		{
			name: fmt.Sprintf("4a load hypothesis, %d calls", loadN), scenario: "load", calls: loadN,
			body: simplifiedPayload, payload: simplified,
			why: fmt.Sprintf("hypothesis: concurrent load (rate limits). %d simplified calls at once, as a JMeter run would make", loadN),
		},
		{
			name: fmt.Sprintf("4b load hypothesis, %d calls", fewer), scenario: "load", calls: fewer,
			body: simplifiedPayload, payload: simplified,
			why: fmt.Sprintf("the control: %d calls at once, under the rule's min_inflight of %d", fewer, loadN),
		},
		{
			name: "5a blocking webhook", scenario: "blocking", calls: 1,
			body: ticketPayload, payload: ticket,
			why: "hypothesis: the webhook blocks while the media path is set up. The ticket call, held open (sync)",
		},
		{
			name: "5b the fix: async webhook", scenario: "blocking", mode: "async", calls: 1,
			body: ticketPayload, payload: ticket,
			why:  "the suggested fix: the same ticket call with the webhook in async mode (202 at once, work pending)",
			note: "The rule keys on requests held open (min_inflight); async work is pending, not held, so it stays quiet.",
		},
	}, nil
}

// webhookMatch returns the first match.webhook among scenario's rules, or
// the zero value.
func webhookMatch(cfg config.Config, scenario string) faults.WebhookMatch {
	for _, r := range cfg.Scenarios[scenario].Rules {
		if r.Match.Webhook != nil {
			return *r.Match.Webhook
		}
	}
	return faults.WebhookMatch{}
}

// injectedHeader returns an X-Custom-Attributes value a flow might inject:
// the custom attributes, base64-encoded, padded to 256 bytes over minBytes so
// the request header passes minBytes whatever else it carries.
func injectedHeader(minBytes int) string {
	pad := (minBytes + 256) * 3 / 4
	attrs := `{"ticket_id":"INC0012345","u_history":"` + strings.Repeat("x", pad) + `"}`
	return base64.StdEncoding.EncodeToString([]byte(attrs))
}

// story runs steps against one server.
type story struct {
	srv  *server.Server
	w    io.Writer
	http *http.Client
	log  *slog.Logger
}

// step runs one plan: it activates the scenario, makes the webhook calls,
// waits until each is held open or answered, gathers, reports, then cancels
// the calls and waits until the webhook holds none.
func (s *story) step(ctx context.Context, p plan) (Step, error) {
	hub := s.srv.Webhooks()
	fmt.Fprintf(s.w, "\n== %s (scenario %s)\n%s\n", p.name, p.scenario, indent(p.why))
	if p.scenario != s.srv.Faults().Scenario() {
		if _, err := s.srv.Faults().ActivateScenario(p.scenario); err != nil {
			return Step{}, err
		}
	}
	if p.mode != "" {
		if err := hub.Set(hookName, webhook.Settings{Mode: &p.mode}); err != nil {
			return Step{}, err
		}
	}
	seq := s.srv.Faults().Journal().LastSeq()
	lastID := lastRecordID(hub)

	callCtx, cancel := context.WithCancel(ctx)
	fc := s.call(callCtx, p)
	defer func() { _ = fc.stop(cancel) }() // on an early return

	// Every call is either held open by the webhook or settled (answered,
	// or failed).
	if err := waitFor(ctx, hub, fc, "webhook calls to be held or answered", func() bool {
		return hub.Inflight(hookName)+fc.settled() >= p.calls
	}); err != nil {
		return Step{}, err
	}
	if err := fc.failure(); err != nil {
		return Step{}, err
	}
	st := Step{
		Name:     p.name,
		Scenario: p.scenario,
		Mode:     hub.Stats()[hookName].Mode,
		Calls:    p.calls,
		Held:     hub.Inflight(hookName),
		Pending:  hub.Pending(hookName),
	}
	s.printFlow(p, st, newRecords(hub, lastID), fc.statuses())

	gctx, gcancel := context.WithTimeout(ctx, gatherLimit)
	res, err := gather.Gather(gctx, s.srv.ICEServers(), gather.Options{STUNGatherTimeout: stunTimeout, Logger: s.log})
	gcancel()
	if err != nil {
		return Step{}, err
	}
	for _, c := range res.ByType("srflx") {
		st.Srflx = append(st.Srflx, c.AddrPort().String())
	}
	st.Relay, st.Host = len(res.ByType("relay")), len(res.ByType("host"))
	s.printCandidates(res)

	entries := s.srv.Faults().Journal().Query(faults.Query{SinceSeq: seq})
	for _, e := range entries {
		if e.Code == http.StatusForbidden {
			st.Forbidden++
		}
		if !slices.Contains(st.Rules, e.Rule) {
			st.Rules = append(st.Rules, e.Rule)
		}
	}
	slices.Sort(st.Rules)
	s.printJournal(entries)
	s.printOutcome(st, strings.ReplaceAll(p.note, "stun:IP:PORT", "stun:"+s.srv.STUNAddr().String()))

	if err := fc.stop(cancel); err != nil {
		return Step{}, err
	}
	if err := waitFor(ctx, hub, nil, "the webhook to hold no call", func() bool { return hub.Inflight(hookName) == 0 }); err != nil {
		return Step{}, err
	}
	return st, nil
}

// flowCalls are one step's webhook calls in flight.
type flowCalls struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	settle   chan struct{} // closed and replaced when a call settles
	status   []int         // answers received so far
	failed   int           // calls that failed other than by the step's cancellation
	err      error         // the first of those failures
	stopOnce sync.Once
}

// call starts p.calls POSTs to the webhook, each in its own goroutine, until
// each is answered or ctx ends.
func (s *story) call(ctx context.Context, p plan) *flowCalls {
	c := &flowCalls{settle: make(chan struct{})}
	url := s.srv.HTTPURL() + "/webhook/" + hookName
	for range p.calls {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			status, err := s.post(ctx, url, p)
			c.mu.Lock()
			defer c.mu.Unlock()
			close(c.settle)
			c.settle = make(chan struct{})
			switch {
			case err == nil:
				c.status = append(c.status, status)
			case ctx.Err() == nil:
				c.failed++
				if c.err == nil {
					c.err = err
				}
			}
		}()
	}
	return c
}

// post makes one webhook call and returns the answer's status.
func (s *story) post(ctx context.Context, url string, p plan) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(p.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range p.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// changed returns a channel closed when the next call settles.
func (c *flowCalls) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settle
}

// settled returns how many calls have been answered or have failed.
func (c *flowCalls) settled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.status) + c.failed
}

// failure returns the first call's failure, if any.
func (c *flowCalls) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// statuses returns the answers so far, sorted.
func (c *flowCalls) statuses() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(slices.Values(c.status))
}

// stop cancels the calls still held open (the flow gives up on them, as the
// softphone has looked), waits for their goroutines and returns the first
// failure. It may be called more than once.
func (c *flowCalls) stop(cancel context.CancelFunc) error {
	c.stopOnce.Do(func() {
		cancel()
		c.wg.Wait()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// waitFor waits until cond holds, woken by every change of hub's counts
// and, when calls is not nil, by every call of the step that settles. It
// gives up with an error naming what it waited for after waitLimit, or when
// ctx ends.
func waitFor(ctx context.Context, hub *webhook.Hub, calls *flowCalls, what string, cond func() bool) error {
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		var settled <-chan struct{} // nil: never ready
		if calls != nil {
			settled = calls.changed()
		}
		changed := hub.Changed()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-settled:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("waited %v for %s", waitLimit, what)
		}
	}
}

// lastRecordID returns the ID of the webhook's newest request (0 for none).
func lastRecordID(hub *webhook.Hub) uint64 {
	recs := hub.Records(hookName)
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].ID
}

// newRecords returns the webhook's requests newer than id.
func newRecords(hub *webhook.Hub, id uint64) []webhook.Record {
	var out []webhook.Record
	for _, r := range hub.Records(hookName) {
		if r.ID > id {
			out = append(out, r)
		}
	}
	return out
}

// printFlow prints what the flow sent and where the calls stand.
func (s *story) printFlow(p plan, st Step, recs []webhook.Record, statuses []int) {
	body, header := 0, 0
	if len(recs) > 0 {
		body, header = recs[0].BodyBytes, recs[0].HeaderBytes
	}
	fmt.Fprintf(s.w, "  flow:      %d x POST /webhook/%s: %s\n", p.calls, hookName, p.payload)
	fmt.Fprintf(s.w, "             body %d bytes, header %d bytes", body, header)
	for k, vs := range p.header {
		for _, v := range vs {
			fmt.Fprintf(s.w, " (%s: %d bytes)", k, len(v))
		}
	}
	fmt.Fprintln(s.w)
	fmt.Fprintf(s.w, "  webhook:   %s mode; held open now %d, pending %d", st.Mode, st.Held, st.Pending)
	if len(statuses) > 0 {
		fmt.Fprintf(s.w, "; answered at once: %s", joinInts(statuses))
	}
	fmt.Fprintln(s.w)
}

// printCandidates prints the softphone's candidates by type.
func (s *story) printCandidates(res gather.Result) {
	label := "  softphone: "
	for _, typ := range []string{"host", "srflx", "relay"} {
		cands := res.ByType(typ)
		addrs := make([]string, 0, len(cands))
		for _, c := range cands {
			addrs = append(addrs, c.AddrPort().String())
		}
		list := "none"
		if len(addrs) > 0 {
			list = strings.Join(addrs, ", ")
		}
		fmt.Fprintf(s.w, "%s%-5s %s\n", label, typ, list)
		label = "             "
	}
}

// printJournal prints the rule firings of the step.
func (s *story) printJournal(entries []faults.Entry) {
	if len(entries) == 0 {
		fmt.Fprintln(s.w, "  journal:   no rule fired")
		return
	}
	label := "  journal:   "
	for _, e := range entries {
		what := e.Action
		if e.Code != 0 {
			what = fmt.Sprintf("%s %d", e.Action, e.Code)
		}
		dir := "from"
		if e.Direction == "out" {
			dir = "to"
		}
		fmt.Fprintf(s.w, "%s#%d %s: %s on %s %s (%s, %s client %s)\n",
			label, e.Seq, e.Rule, what, e.Method, e.Class, e.Transport, dir, e.Client)
		label = "             "
	}
}

// printOutcome sums the step up.
func (s *story) printOutcome(st Step, note string) {
	var out string
	switch {
	case len(st.Srflx) > 0:
		out = fmt.Sprintf("gathering works: srflx %s, %d relay candidate(s), %d 403(s)",
			strings.Join(slices.Compact(slices.Clone(st.Srflx)), ", "), st.Relay, st.Forbidden)
	default:
		out = fmt.Sprintf("Binding refused: no srflx candidate, %d relay candidate(s) (Allocate is not Binding), %d 403(s)",
			st.Relay, st.Forbidden)
	}
	fmt.Fprintf(s.w, "  outcome:   %s\n", out)
	if note != "" {
		fmt.Fprintf(s.w, "  note:      %s\n", strings.ReplaceAll(note, "\n", "\n             "))
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, " ")
}
