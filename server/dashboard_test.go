package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// dashboardPage is what GET / inlines into the page.
type dashboardPage struct {
	Auth string `json:"auth"`
	Data *struct {
		Rules struct {
			Rules []faults.RuleStatus `json:"rules"`
		} `json:"rules"`
		Stats struct {
			Webhooks map[string]struct {
				Inflight int    `json:"inflight"`
				Mode     string `json:"mode"`
			} `json:"webhooks"`
		} `json:"stats"`
		Journal struct {
			Entries []faults.Entry `json:"entries"`
		} `json:"journal"`
		Trace tracePage `json:"trace"`
	} `json:"data"`
}

var pageData = regexp.MustCompile(`<script type="application/json" id="stunfault-data">(.*?)</script>`)

// getDashboard fetches GET / (with host as the Host header when not "")
// and returns the response and the data inlined into it.
func getDashboard(t *testing.T, url, host string, header http.Header) (*http.Response, string, dashboardPage) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := pageData.FindSubmatch(body)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET %s: status %d, data inline: %v", url, res.StatusCode, m != nil)
	}
	var p dashboardPage
	if err := json.Unmarshal(m[1], &p); err != nil {
		t.Fatalf("GET %s: inline data: %v", url, err)
	}
	return res, string(body), p
}

// The page at GET / carries what happened before it was opened: the rules
// with their counters, the journal, the trace's messages and the held
// webhook request, as the ops and GET /trace give them; its files are
// served beside it, and it may not be framed or load anything from
// elsewhere.
func TestDashboardInlinesWhatHappened(t *testing.T) {
	rule := whRule("screenpop-403", 403, faults.WebhookMatch{MinInflight: 1})
	e := startWebhookRules(t, "sync", rule)
	c := newSTUNClient(t, e.srv, "udp")
	e.hold(t, 1, whTicketBody, nil)
	e.wantBinding(t, c, 403, rule.ID, "webhook held")

	res, _, p := getDashboard(t, e.srv.HTTPURL()+"/", "", nil)
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("CSP %q, X-Frame-Options %q: want only its own origin, and no framing", csp, res.Header.Get("X-Frame-Options"))
	}
	d := p.Data
	if p.Auth != "ok" || d == nil {
		t.Fatalf("auth %q, data %v: want the data inline", p.Auth, d != nil)
	}
	if len(d.Rules.Rules) != 1 || d.Rules.Rules[0].Rule.ID != rule.ID || d.Rules.Rules[0].Fired == 0 {
		t.Errorf("rules: got %+v, want %s having fired", d.Rules.Rules, rule.ID)
	}
	if len(d.Journal.Entries) == 0 || d.Journal.Entries[0].Rule != rule.ID || d.Journal.Entries[0].Code != 403 {
		t.Errorf("journal: got %+v, want the 403 of %s", d.Journal.Entries, rule.ID)
	}
	fired := false
	for _, m := range d.Trace.Messages {
		fired = fired || (m.Decision.Rule == rule.ID && m.Decision.Code == 403 && m.Method == "binding")
	}
	if !fired || len(d.Trace.Webhooks) != 1 || !d.Trace.Webhooks[0].Held {
		t.Errorf("trace: got %+v, want the Binding refused by %s during the held request", d.Trace, rule.ID)
	}
	if w := d.Stats.Webhooks[whHook]; w.Inflight != 1 || w.Mode != "sync" {
		t.Errorf("stats: webhook %s %+v, want 1 in flight, sync", whHook, w)
	}

	for path, want := range map[string]string{
		"/dashboard/app.js":    "text/javascript; charset=utf-8",
		"/dashboard/style.css": "text/css; charset=utf-8",
		"/dashboard/nothing":   "",
		"/nothing":             "",
	} {
		res, err := http.Get(e.srv.HTTPURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want == "" && res.StatusCode != http.StatusNotFound || want != "" && (res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != want) {
			t.Errorf("GET %s: %d %q, want %q (404 when empty)", path, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
}

// The page is served to anyone, but carries data only for a request the
// control socket would accept from it: the token when one is set, and
// otherwise a host that is an IP address or localhost (not a name that a
// DNS-rebinding page could give).
func TestDashboardFollowsTheControlRules(t *testing.T) {
	rule := faults.Rule{ID: "secret-rule", Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "drop"}}
	open := startServer(t, nil)
	if _, err := open.Faults().Add(rule); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.HTTP.Token = "s3cret"
	locked := startServer(t, &cfg)
	if _, err := locked.Faults().Add(rule); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		url      string
		host     string
		header   http.Header
		wantAuth string
	}{
		{"no token needed", open.HTTPURL() + "/", "", nil, "ok"},
		{"localhost", open.HTTPURL() + "/", "localhost:1", nil, "ok"},
		{"rebinding name", open.HTTPURL() + "/", "evil.example:8478", nil, "origin"},
		{"cross-site origin", open.HTTPURL() + "/", "", http.Header{"Origin": {"http://evil.example"}}, "origin"},
		{"token missing", locked.HTTPURL() + "/", "", nil, "token"},
		{"token wrong", locked.HTTPURL() + "/?token=guess", "", nil, "token"},
		{"token in the URL", locked.HTTPURL() + "/?token=s3cret", "", nil, "ok"},
		{"token in a header", locked.HTTPURL() + "/", "", http.Header{"Authorization": {"Bearer s3cret"}}, "ok"},
		{"token and a name", locked.HTTPURL() + "/?token=s3cret", "lab.example:8478", nil, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, body, p := getDashboard(t, tc.url, tc.host, tc.header)
			if p.Auth != tc.wantAuth {
				t.Errorf("auth %q, want %q", p.Auth, tc.wantAuth)
			}
			if has := strings.Contains(body, rule.ID); has != (tc.wantAuth == "ok") {
				t.Errorf("page names %s: %v, want %v", rule.ID, has, tc.wantAuth == "ok")
			}
		})
	}
}
