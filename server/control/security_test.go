package control_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/server/control"
)

// upgradeStatus tries a WebSocket handshake and returns its HTTP status and
// the error code of a refusal.
func upgradeStatus(t *testing.T, url string, h http.Header) (int, string) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx(t), url, h)
	if err == nil {
		ws.Close()
		return resp.StatusCode, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer resp.Body.Close()
	var rep control.Reply
	_ = json.NewDecoder(resp.Body).Decode(&rep)
	if rep.Error == nil {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, rep.Error.Code
}

func TestOriginCheck(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{AllowedOrigins: []string{"https://lab.example:8443/"}})
	host := strings.TrimPrefix(ts.srv.URL, "http://")
	tests := []struct {
		origin string
		status int
		code   string
	}{
		{"", http.StatusSwitchingProtocols, ""},                         // not a browser
		{"http://" + host, http.StatusSwitchingProtocols, ""},           // same host
		{"https://LAB.example:8443", http.StatusSwitchingProtocols, ""}, // allowed
		{"http://evil.example", http.StatusForbidden, control.CodeForbiddenOrigin},
		{"http://127.0.0.1:1", http.StatusForbidden, control.CodeForbiddenOrigin}, // another port is another origin
		{"https://lab.example", http.StatusForbidden, control.CodeForbiddenOrigin},
		{"null", http.StatusForbidden, control.CodeForbiddenOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			status, code := upgradeStatus(t, ts.wsURL, h)
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
		})
	}

	// DNS rebinding: a page on a name that resolves to loopback sends its
	// own name as Origin and Host. Without a token, that is refused.
	h := http.Header{"Origin": {"http://rebind.example:8478"}}
	h.Set("Host", "rebind.example:8478")
	if status, code := upgradeStatus(t, ts.wsURL, h); status != http.StatusForbidden || code != control.CodeForbiddenOrigin {
		t.Errorf("rebinding page: got %d %q, want 403 forbidden_origin", status, code)
	}

	// The client reports the refusal as a *control.Error.
	_, err := control.Dial(ctx(t), ts.wsURL, &control.DialOptions{Header: http.Header{"Origin": {"http://evil.example"}}})
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeForbiddenOrigin {
		t.Errorf("Dial from another origin: got %v, want forbidden_origin", err)
	}
}

func TestToken(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{Token: "s3cret"})
	tests := []struct {
		name   string
		url    string
		header http.Header
		status int
	}{
		{"no token", ts.wsURL, nil, http.StatusUnauthorized},
		{"wrong header token", ts.wsURL, http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized},
		{"wrong scheme", ts.wsURL, http.Header{"Authorization": {"Basic s3cret"}}, http.StatusUnauthorized},
		{"wrong query token", ts.wsURL + "?token=nope", nil, http.StatusUnauthorized},
		{"header token", ts.wsURL, http.Header{"Authorization": {"Bearer s3cret"}}, http.StatusSwitchingProtocols},
		{"query token", ts.wsURL + "?token=s3cret", nil, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _ := upgradeStatus(t, tt.url, tt.header)
			if status != tt.status {
				t.Errorf("got %d, want %d", status, tt.status)
			}
		})
	}
	if _, err := control.Dial(ctx(t), ts.wsURL, nil); codeOf(t, err) != control.CodeUnauthorized {
		t.Errorf("Dial without token: got %v, want unauthorized", err)
	}
	c := ts.dial(t, &control.DialOptions{Token: "s3cret"})
	if _, err := c.Hello(ctx(t)); err != nil {
		t.Errorf("hello with the token: %v", err)
	}
}

// post sends body to /api/op the way curl -H 'Content-Type: application/json' does.
func post(t *testing.T, ts *testServer, op, body string, header http.Header) (int, control.Reply) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, ts.srv.URL+"/api/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var rep control.Reply
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("POST /api/%s: reply %q: %v", op, data, err)
	}
	return resp.StatusCode, rep
}

func TestAPI(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{MaxFrameBytes: 4096})

	status, rep := post(t, ts, "rules.add", `{"rule":{"id":"r","match":{"methods":["binding"]},"action":{"type":"error","code":403}}}`, nil)
	if status != http.StatusOK || !rep.OK || rep.Revision == nil || *rep.Revision != ts.b.eng.Revision() {
		t.Fatalf("rules.add: got %d %+v", status, rep)
	}
	if v := ts.decide(); v.Rule != "r" {
		t.Errorf("after POST rules.add: got %v by %q, want error by r", v.Kind, v.Rule)
	}
	status, rep = post(t, ts, "journal.count", `{"query":{"rule":"r"}}`, nil)
	var count control.CountResult
	if status != http.StatusOK || json.Unmarshal(rep.Result, &count) != nil || count.Count != 1 {
		t.Errorf("journal.count: got %d %s, want 200 count 1", status, rep.Result)
	}
	if status, rep = post(t, ts, "hello", ``, nil); status != http.StatusOK || !rep.OK {
		t.Errorf("hello with an empty body: got %d %+v", status, rep)
	}
	if status, rep = post(t, ts, "hello", `{"id":7}`, nil); status != http.StatusOK || rep.ID == nil || *rep.ID != 7 {
		t.Errorf("hello with an id: got %d %+v, want the id echoed", status, rep)
	}

	errs := []struct {
		name, op, body string
		status         int
		code           string
	}{
		{"unknown op", "rules.explode", `{}`, http.StatusNotFound, control.CodeUnknownOp},
		{"not found", "rules.get", `{"rule_id":"nope"}`, http.StatusNotFound, control.CodeNotFound},
		{"invalid rule", "rules.add", `{"rule":{"action":{"type":"nope"}}}`, http.StatusUnprocessableEntity, control.CodeInvalidRule},
		{"bad JSON", "hello", `{`, http.StatusBadRequest, control.CodeBadJSON},
		{"op mismatch", "hello", `{"op":"rules.clear"}`, http.StatusBadRequest, control.CodeBadRequest},
		{"subscribe needs the socket", "subscribe", `{}`, http.StatusBadRequest, control.CodeBadRequest},
		{"too large", "hello", `{"x":"` + strings.Repeat("x", 5000) + `"}`, http.StatusRequestEntityTooLarge, control.CodeTooLarge},
		{"cross-site", "rules.clear", `{}`, http.StatusForbidden, control.CodeForbiddenOrigin},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.name == "cross-site" {
				h = http.Header{"Origin": {"http://evil.example"}}
			}
			status, rep := post(t, ts, tt.op, tt.body, h)
			if status != tt.status || rep.Error == nil || rep.Error.Code != tt.code {
				t.Errorf("got %d %+v, want %d %s", status, rep.Error, tt.status, tt.code)
			}
		})
	}
	if len(ts.b.eng.List()) != 1 {
		t.Error("the cross-site rules.clear was applied")
	}

	// A browser form can only send "simple" content types.
	resp, err := http.Post(ts.srv.URL+"/api/rules.clear", "text/plain", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST: got %d, want 415", resp.StatusCode)
	}
	resp, err = http.Get(ts.srv.URL + "/api/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/hello: got %d, want 405", resp.StatusCode)
	}
	if len(ts.b.eng.List()) != 1 {
		t.Error("a refused request changed the rules")
	}
}

func TestAPIToken(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{Token: "s3cret"})
	if status, rep := post(t, ts, "hello", `{}`, nil); status != http.StatusUnauthorized || rep.Error.Code != control.CodeUnauthorized {
		t.Errorf("no token: got %d %+v", status, rep.Error)
	}
	if status, _ := post(t, ts, "hello", `{}`, http.Header{"Authorization": {"Bearer s3cret"}}); status != http.StatusOK {
		t.Errorf("bearer token: got %d, want 200", status)
	}
}
