package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// The dashboard in headless Firefox, as a user sees it: after a real
// pion/stun Binding was answered 403 by a rule, the page (opened after the
// fact) lists the rule with its counter, draws the 403 on the timeline
// labelled with the rule id and the code, and shows the message's fields
// on hover; it then goes live over the control socket, so the rule's
// switch on the page lets the next Binding pass, and the page draws it.
// The page logs no error. A screenshot is kept.
func TestFirefoxDashboard(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	srv := startStunfault(t, nil, faults.Rule{
		ID:          "binding-403",
		Description: "403 on every Binding request",
		Match:       faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action:      faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	})
	client := newBindingClient(t, srv)
	if code := client.binding(t); code != 403 {
		t.Fatalf("Binding: got %d, want 403", code)
	}

	url := srv.HTTPURL() + "/"
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("dashboard URL %s: want an IP literal on loopback", url)
	}
	page := openInFirefox(t, ctx, url)

	var row struct {
		Text  string `json:"text"`
		Fired string `json:"fired"`
	}
	waitFor(t, ctx, page, "the rule in the rules panel", `(() => {
  const tr = !document.getElementById("main").hidden && document.querySelector('#rules tr[data-rule="binding-403"]');
  return tr && tr.querySelector(".fired").textContent !== "" && {text: tr.textContent, fired: tr.querySelector(".fired").textContent};
})()`, &row)
	if !strings.Contains(row.Text, "binding-403") || row.Fired != "1" {
		t.Errorf("the rules panel's row: %q with fired %q, want binding-403 fired 1", row.Text, row.Fired)
	}

	var mark struct {
		T     int64   `json:"t"`
		Label string  `json:"label"`
		W     float64 `json:"w"`
	}
	waitFor(t, ctx, page, "the 403 on the timeline", `(() => {
  const g = document.querySelector('#timeline g.mark[data-rule="binding-403"][data-code="403"][data-method="binding"]');
  if (!g) return null;
  const r = g.getBoundingClientRect();
  return {t: +g.dataset.t, label: g.textContent, w: r.width};
})()`, &mark)
	if mark.Label != "binding-403 403" {
		t.Errorf("the 403 mark's label: %q, want \"binding-403 403\"", mark.Label)
	}
	if mark.W <= 0 {
		t.Errorf("the 403 mark is drawn %v px wide, want it visible", mark.W)
	}

	// Hovering over the mark shows the message's fields.
	var tip string
	if err := page.eval(ctx, `(() => {
  const g = document.querySelector('#timeline g.mark[data-rule="binding-403"]');
  const r = g.getBoundingClientRect();
  g.dispatchEvent(new PointerEvent("pointermove", {bubbles: true, clientX: r.x + 2, clientY: r.y + 2}));
  const t = document.getElementById("tooltip");
  return t.hidden ? "" : t.textContent;
})()`, &tip); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"binding request  from 127.0.0.1:", "decision   error 403 by rule binding-403 (journal #1)"} {
		if !strings.Contains(tip, want) {
			t.Errorf("hover on the 403: got\n%s\nwant %q in it", tip, want)
		}
	}

	// Live: the rule's switch, off on the page, lets the next Binding pass.
	waitFor(t, ctx, page, "the control socket live", `document.getElementById("conn").textContent === "live"`, nil)
	click(t, ctx, page, `.rule-switch[data-rule="binding-403"]`)
	waitFor(t, ctx, page, "the rule switched off", `document.querySelector('#rules tr.disabled[data-rule="binding-403"] .rule-switch:not(:checked):not(:disabled)')`, nil)
	if code := client.binding(t); code != 0 {
		t.Fatalf("Binding with the rule switched off on the page: got %d, want success", code)
	}
	waitFor(t, ctx, page, "the passed Binding", fmt.Sprintf(passedAfter, mark.T), nil)

	if err := page.eval(ctx, `(() => { document.getElementById("tooltip").hidden = true; })()`, nil); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard-firefox.png")
	if err := page.screenshot(ctx, shot); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot: %v (%v)", fi, err)
	}
	saveArtifact(t, shot)

	if errs := page.pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors in Firefox:\n%s", strings.Join(errs, "\n"))
	}
}
