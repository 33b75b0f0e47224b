package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// waitJS resolves once cond() is truthy, checking at every change of the
// page's DOM (the dashboard re-renders what a reply or a trace page
// changes), and rejects after ms.
const waitJS = `(cond, ms) => new Promise((resolve, reject) => {
  let obs = null, timer = null;
  const done = (f, v) => { if (obs) obs.disconnect(); clearTimeout(timer); f(v); return true; };
  const check = () => { try { const v = cond(); return v ? done(resolve, v) : false; } catch (e) { return done(reject, e); } };
  if (check()) return;
  obs = new MutationObserver(check);
  obs.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  timer = setTimeout(() => done(reject, new Error("timed out waiting for " + cond)), ms);
})`

// browserPage is a page the tests drive: Chromium's over the DevTools
// protocol (cdp), Firefox's over WebDriver BiDi (bidi).
type browserPage interface {
	// eval evaluates expr in the page, awaiting a promise, and decodes its
	// JSON-able value into out (when not nil).
	eval(ctx context.Context, expr string, out any) error
}

// waitFor waits in the page until the JavaScript expression cond is truthy
// and decodes its value into out.
func waitFor(t *testing.T, ctx context.Context, c browserPage, what, cond string, out any) {
	t.Helper()
	expr := fmt.Sprintf("(%s)(() => (%s), %d)", waitJS, cond, waitTimeout.Milliseconds())
	if err := c.eval(ctx, expr, out); err != nil {
		t.Fatalf("the page never showed %s: %v", what, err)
	}
}

// markInBar finds a mark of the 403 rule's Binding drawn inside a bar of
// the webhook's requests, by time and by position.
const markInBar = `(() => {
  const bars = [...document.querySelectorAll('#timeline rect.span[data-webhook="servicenow"]')];
  for (const g of document.querySelectorAll('#timeline g.mark[data-rule="ticket-403"][data-code="403"][data-method="binding"]')) {
    const t = +g.dataset.t, x = +g.dataset.x;
    for (const b of bars) {
      const s = +b.dataset.start, e = b.dataset.end ? +b.dataset.end : Infinity;
      const bx = +b.getAttribute("x"), bw = +b.getAttribute("width");
      if (t >= s && t <= e && x >= bx && x <= bx + bw) return {t, label: g.textContent, bar: +b.dataset.id, mode: b.dataset.mode};
    }
  }
  return null;
})()`

// passedAfter is a passed Binding request drawn after time %d (ms).
const passedAfter = `[...document.querySelectorAll('#timeline g.mark[data-method="binding"][data-class="request"][data-action="pass"]')]
  .map((g) => +g.dataset.t).find((t) => t > %d)`

// The dashboard, driven in headless Chromium as a user would: with a 403
// rule on Binding while a ticket webhook call is held (min_inflight, as in
// examples/screenpop), a real client's refused Binding is on the timeline
// inside the webhook request's bar, labelled with the rule and 403;
// switching the rule off on the page lets the next Binding pass; switching
// the webhook to async on the page ends the 403s (once the call held
// before the switch has ended). The page's first render (--dump-dom)
// already lists the rule and the 403 made before it was opened, and its
// export shows them with no server. A screenshot is kept.
func TestChromiumDashboard(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cfg := config.Default()
	hook := cfg.Webhooks["servicenow"]
	hook.Latency = faults.Duration(time.Minute) // held until the test cancels it
	cfg.Webhooks = map[string]config.Webhook{"servicenow": hook}
	srv := startStunfault(t, &cfg, faults.Rule{
		ID:          "ticket-403",
		Description: "403 on Binding while a ticket call is held open",
		Match: faults.Match{Methods: []string{"binding"}, Classes: []string{"request"},
			Webhook: &faults.WebhookMatch{Name: "servicenow", MinInflight: 1, Body: "ticket_id"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	})
	client := newBindingClient(t, srv)

	// The ticket call, held open, and a Binding refused while it is.
	held := holdCall(t, srv)
	if code := client.binding(t); code != 403 {
		t.Fatalf("Binding during the held ticket call: got %d, want 403", code)
	}

	// The first render already has the rule and the 403.
	dom := dumpDOM(t, ctx, srv.HTTPURL()+"/")
	if !strings.Contains(dom, `<tr data-rule="ticket-403">`) {
		t.Errorf("--dump-dom: no row for rule ticket-403 in:\n%.3000s", dom)
	}
	if !regexp.MustCompile(`<g class="mark d-error[^"]*"[^>]* data-rule="ticket-403" data-code="403"[^>]* data-method="binding"`).MatchString(dom) {
		t.Errorf("--dump-dom: no 403 mark of ticket-403 on the timeline in:\n%.3000s", dom)
	}

	page := openInChromium(t, ctx, srv.HTTPURL()+"/")
	waitFor(t, ctx, page, "the rules", `!document.getElementById("main").hidden && document.querySelector('#rules tr[data-rule="ticket-403"]')`, nil)
	var mark struct {
		T     int64  `json:"t"`
		Label string `json:"label"`
		Mode  string `json:"mode"`
	}
	waitFor(t, ctx, page, "the 403 inside the webhook's bar", markInBar, &mark)
	if mark.Label != "ticket-403 403" || mark.Mode != "sync" {
		t.Errorf("the 403 mark: label %q in a %s bar, want \"ticket-403 403\" in a sync one", mark.Label, mark.Mode)
	}

	// Hovering over the mark shows the message's fields; a click keeps them.
	var tip string
	if err := page.eval(ctx, `(() => {
  const g = document.querySelector('#timeline g.mark[data-rule="ticket-403"]');
  const r = g.getBoundingClientRect();
  g.dispatchEvent(new PointerEvent("pointermove", {bubbles: true, clientX: r.x + 2, clientY: r.y + 2}));
  g.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  const t = document.getElementById("tooltip");
  return t.hidden ? "" : t.textContent + "\n--\n" + document.getElementById("detail").textContent;
})()`, &tip); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"binding request  from 127.0.0.1:", "txid ", "decision   error 403 by rule ticket-403 (journal #1)", "--\nbinding request"} {
		if !strings.Contains(tip, want) {
			t.Errorf("hover and click on the 403: got\n%s\nwant %q in it", tip, want)
		}
	}

	// The rule's switch, off: the next Binding passes, and shows so.
	click(t, ctx, page, `.rule-switch[data-rule="ticket-403"]`)
	waitFor(t, ctx, page, "the rule switched off", `document.querySelector('#rules tr.disabled[data-rule="ticket-403"] .rule-switch:not(:checked):not(:disabled)')`, nil)
	if code := client.binding(t); code != 0 {
		t.Fatalf("Binding with the rule switched off on the page: got %d, want success", code)
	}
	var passed int64
	waitFor(t, ctx, page, "the passed Binding", fmt.Sprintf(passedAfter, mark.T), &passed)

	// On again: 403 again, while the call is held.
	click(t, ctx, page, `.rule-switch[data-rule="ticket-403"]`)
	waitFor(t, ctx, page, "the rule switched on", `document.querySelector('#rules tr:not(.disabled)[data-rule="ticket-403"] .rule-switch:checked:not(:disabled)')`, nil)
	if code := client.binding(t); code != 403 {
		t.Fatalf("Binding with the rule switched on again: got %d, want 403", code)
	}

	// The webhook to async on the page. The call held before the switch
	// stays held (and the 403 with it) until it ends; the flow's next
	// ticket call is answered 202 at once, and the Binding passes.
	click(t, ctx, page, `.webhook-mode[data-webhook="servicenow"][data-mode="async"]`)
	waitFor(t, ctx, page, "the webhook in async mode", `document.querySelector('.webhook-mode[data-webhook="servicenow"][data-mode="async"][aria-pressed="true"]')`, nil)
	if mode := srv.Webhooks().Stats()["servicenow"].Mode; mode != "async" {
		t.Fatalf("webhook mode after the page's switch: %q, want async", mode)
	}
	held.end(t)
	if status := postTicket(t, ctx, srv); status != http.StatusAccepted {
		t.Fatalf("the ticket call in async mode: status %d, want 202", status)
	}
	if n := srv.Webhooks().Pending("servicenow"); n != 1 {
		t.Fatalf("pending ticket work: %d, want 1", n)
	}
	before := srv.Faults().Journal().Count(faults.Query{Rule: "ticket-403"})
	if code := client.binding(t); code != 0 {
		t.Fatalf("Binding with the ticket call async: got %d, want success", code)
	}
	if n := srv.Faults().Journal().Count(faults.Query{Rule: "ticket-403"}); n != before {
		t.Errorf("ticket-403 fired %d more times in async mode, want none", n-before)
	}
	waitFor(t, ctx, page, "the async request's bar", `document.querySelector('#timeline rect.span.async[data-webhook="servicenow"]')`, nil)
	waitFor(t, ctx, page, "the Binding passed under async", fmt.Sprintf(passedAfter, passed), nil)

	// The story took a few seconds: zoom the window to 15 s for the picture.
	if err := page.eval(ctx, `(() => { const s = document.getElementById("span-select"); s.value = "15000"; s.dispatchEvent(new Event("change")); document.getElementById("tooltip").hidden = true; })()`, nil); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := page.screenshot(ctx, shot); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	saveArtifact(t, shot)

	// The export: one file, with no server behind it, that shows the 403.
	var html string
	if err := page.eval(ctx, `window.stunfault.exportHTML()`, &html); err != nil {
		t.Fatalf("export: %v", err)
	}
	for _, ref := range []string{`src="/`, `href="/`} {
		if strings.Contains(html, ref) {
			t.Errorf("the export refers to the server (%s)", ref)
		}
	}
	exported := filepath.Join(t.TempDir(), "timeline.html")
	if err := os.WriteFile(exported, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	saveArtifact(t, exported)
	dom = dumpDOM(t, ctx, "file://"+exported)
	if !strings.Contains(dom, `data-rule="ticket-403" data-code="403"`) || !strings.Contains(dom, `class="conn exported"`) {
		t.Errorf("the exported file, opened alone: no 403 mark of ticket-403, or not marked exported:\n%.3000s", dom)
	}
}

// click clicks the element selector names, as a user would.
func click(t *testing.T, ctx context.Context, c browserPage, selector string) {
	t.Helper()
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) throw new Error("no " + %q); el.click(); return true; })()`, selector, selector)
	if err := c.eval(ctx, expr, nil); err != nil {
		t.Fatalf("click %s: %v", selector, err)
	}
}

// bindingClient is a pion/stun client on one UDP socket: every Binding
// comes from the same client, so lands in one lane of the timeline.
type bindingClient struct{ c *stun.Client }

func newBindingClient(t *testing.T, srv *server.Server) *bindingClient {
	t.Helper()
	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := stun.NewClient(conn, stun.WithRTO(50*time.Millisecond))
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &bindingClient{c: c}
}

// binding sends one Binding request and returns the error code of the
// answer (0 for a success).
func (b *bindingClient) binding(t *testing.T) int {
	t.Helper()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	code := -1
	var failed error
	err := b.c.Do(req, func(e stun.Event) {
		if failed = e.Error; failed != nil {
			return
		}
		code = 0
		if e.Message.Type.Class == stun.ClassErrorResponse {
			var ec stun.ErrorCodeAttribute
			if failed = ec.GetFrom(e.Message); failed == nil {
				code = int(ec.Code)
			}
		}
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		t.Fatalf("Binding: %v", err)
	}
	return code
}

// heldCall is a ticket call the webhook holds open until end cancels it.
type heldCall struct {
	srv    *server.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// holdCall posts the ticket call and returns once the webhook holds it.
func holdCall(t *testing.T, srv *server.Server) *heldCall {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	h := &heldCall{srv: srv, cancel: cancel}
	h.wg.Go(func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.HTTPURL()+"/webhook/servicenow", strings.NewReader(ticketPayload))
		if err != nil {
			t.Error(err)
			return
		}
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			t.Errorf("webhook answered %s while it should be held open", res.Status)
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("webhook call: %v", err)
		}
	})
	t.Cleanup(func() { h.end(t) })
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := srv.Webhooks().Wait(wctx, func() bool { return srv.Webhooks().Inflight("servicenow") == 1 }); err != nil {
		t.Fatal("the ticket call was not held open within 5s")
	}
	return h
}

// end gives up on the call and waits until the webhook holds it no more.
func (h *heldCall) end(t *testing.T) {
	t.Helper()
	h.cancel()
	h.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hub := h.srv.Webhooks()
	if err := hub.Wait(ctx, func() bool { return hub.Inflight("servicenow") == 0 }); err != nil {
		t.Errorf("the webhook still holds %d calls 5s after they were cancelled", hub.Inflight("servicenow"))
	}
	http.DefaultClient.CloseIdleConnections()
}

// postTicket sends the ticket call and returns the status it was answered
// with.
func postTicket(t *testing.T, ctx context.Context, srv *server.Server) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.HTTPURL()+"/webhook/servicenow", strings.NewReader(ticketPayload))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ticket call: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// With a token set, the dashboard shows nothing but a box asking for it
// (its first render carries no data); given the token it loads, goes live
// over the control socket, and its rule box adds rules as the CLI reads
// them, with the CLI's messages for a bad one.
func TestChromiumDashboardToken(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cfg := config.Default()
	cfg.HTTP.Token = "lab-token"
	srv := startStunfault(t, &cfg, faults.Rule{ID: "secret-rule", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}})

	dom := dumpDOM(t, ctx, srv.HTTPURL()+"/")
	if strings.Contains(dom, "secret-rule") || !strings.Contains(dom, `<section id="auth">`) || !strings.Contains(dom, `<main id="main" hidden="">`) {
		t.Errorf("--dump-dom without the token: want the token box and nothing else, got:\n%.3000s", dom)
	}

	page := openInChromium(t, ctx, srv.HTTPURL()+"/")
	waitFor(t, ctx, page, "the token box", `!document.getElementById("auth").hidden`, nil)
	if err := page.eval(ctx, `document.getElementById("token-input").value = "wrong"; document.querySelector("#token-form button").click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, page, "the wrong token refused", `document.getElementById("token-error").textContent.includes("wrong token")`, nil)
	if err := page.eval(ctx, `document.getElementById("token-input").value = "lab-token"; document.querySelector("#token-form button").click()`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, page, "the rules, once the token is given", `document.querySelector('#rules tr[data-rule="secret-rule"]')`, nil)
	waitFor(t, ctx, page, "the control socket live", `document.getElementById("conn").textContent === "live"`, nil)

	// A bad rule: the CLI's message, with its line.
	bad := "[[rules]]\nid = \"added-403\"\n[rules.match]\nmethods = [\"bindng\"]\n[rules.action]\ntype = \"error\"\ncode = 403\n"
	addRules(t, ctx, page, bad)
	var msg struct {
		Text string `json:"text"`
		Line string `json:"line"`
	}
	waitFor(t, ctx, page, "the rule box's error", `(() => { const li = document.querySelector("#add-errors li"); return li && {text: li.textContent, line: li.dataset.line}; })()`, &msg)
	if !strings.HasPrefix(msg.Text, `input:4: rules[0].match.methods[0]: unknown method "bindng"`) || msg.Line != "4" {
		t.Errorf("the rule box's error: %q on line %q, want the CLI's message for line 4", msg.Text, msg.Line)
	}
	// A good one: added, and listed.
	addRules(t, ctx, page, strings.Replace(bad, "bindng", "binding", 1))
	waitFor(t, ctx, page, "the added rule", `document.querySelector('#rules tr[data-rule="added-403"]')`, nil)
	if _, err := srv.Faults().Get("added-403"); err != nil {
		t.Errorf("the rule added on the page: %v", err)
	}
}

// addRules types text into the dashboard's rule box and presses Add.
func addRules(t *testing.T, ctx context.Context, c *cdp, text string) {
	t.Helper()
	expr := fmt.Sprintf(`document.getElementById("add-errors").innerHTML = ""; document.getElementById("rule-input").value = %q; document.getElementById("add-rules").click()`, text)
	if err := c.eval(ctx, expr, nil); err != nil {
		t.Fatalf("add rules: %v", err)
	}
}
