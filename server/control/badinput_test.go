package control_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// rawDial opens a plain WebSocket to ts, closed when the test ends.
func rawDial(t *testing.T, ts *testServer) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx(t), ts.wsURL, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return ws
}

// roundTrip sends msg and returns the next reply.
func roundTrip(t *testing.T, ws *websocket.Conn, msg string) control.Reply {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var rep control.Reply
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("reply %s: %v", data, err)
	}
	return rep
}

// Every bad message gets an error reply with the right code, and the
// connection goes on answering.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	if _, err := ts.b.eng.Add(rule403("known")); err != nil {
		t.Fatal(err)
	}
	ws := rawDial(t, ts)
	tests := []struct {
		name, msg, code, field string
		echoID                 bool
	}{
		{"not JSON", `hello`, control.CodeBadJSON, "", false},
		{"truncated JSON", `{"id":1,"op":"hel`, control.CodeBadJSON, "", false},
		{"JSON array", `[{"id":1,"op":"hello"}]`, control.CodeBadJSON, "", false},
		{"JSON string", `"hello"`, control.CodeBadJSON, "", false},
		{"JSON null", `null`, control.CodeBadJSON, "", false},
		{"missing id", `{"op":"hello"}`, control.CodeMissingID, "id", false},
		{"id of wrong type", `{"id":"one","op":"hello"}`, control.CodeBadRequest, "id", false},
		{"fractional id", `{"id":1.5,"op":"hello"}`, control.CodeBadRequest, "id", false},
		{"negative id", `{"id":-1,"op":"hello"}`, control.CodeBadRequest, "id", false},
		{"missing op", `{"id":1}`, control.CodeBadRequest, "op", true},
		{"op of wrong type", `{"id":1,"op":7}`, control.CodeBadRequest, "op", true},
		{"unknown op", `{"id":1,"op":"rules.explode"}`, control.CodeUnknownOp, "op", true},
		{"unknown parameter", `{"id":1,"op":"hello","verbose":true}`, control.CodeBadRequest, "verbose", true},
		{"rules.add without rule", `{"id":1,"op":"rules.add"}`, control.CodeBadRequest, "rule", true},
		{"rules.add rule of wrong type", `{"id":1,"op":"rules.add","rule":[]}`, control.CodeBadRequest, "rule", true},
		{"rules.add field of wrong type", `{"id":1,"op":"rules.add","rule":{"priority":"high","action":{"type":"drop"}}}`, control.CodeBadRequest, "rule.priority", true},
		{"rules.add unknown rule field", `{"id":1,"op":"rules.add","rule":{"mach":{},"action":{"type":"drop"}}}`, control.CodeBadRequest, "rule.mach", true},
		{"rules.add bad method", `{"id":1,"op":"rules.add","rule":{"match":{"methods":["bindng"]},"action":{"type":"drop"}}}`, control.CodeInvalidRule, "match.methods[0]", true},
		{"rules.add bad action", `{"id":1,"op":"rules.add","rule":{"action":{"type":"error","code":42}}}`, control.CodeInvalidRule, "action.code", true},
		{"rules.add bad duration", `{"id":1,"op":"rules.add","rule":{"for":"soon","action":{"type":"drop"}}}`, control.CodeBadRequest, "", true},
		{"rules.get unknown id", `{"id":1,"op":"rules.get","rule_id":"nope"}`, control.CodeNotFound, "rule_id", true},
		{"rules.get without rule_id", `{"id":1,"op":"rules.get"}`, control.CodeBadRequest, "rule_id", true},
		{"rules.get empty rule_id", `{"id":1,"op":"rules.get","rule_id":""}`, control.CodeBadRequest, "rule_id", true},
		{"rules.enable unknown id", `{"id":1,"op":"rules.enable","rule_id":"nope"}`, control.CodeNotFound, "rule_id", true},
		{"rules.update unknown id", `{"id":1,"op":"rules.update","rule_id":"nope","patch":{}}`, control.CodeNotFound, "rule_id", true},
		{"rules.update patch not an object", `{"id":1,"op":"rules.update","rule_id":"known","patch":[1]}`, control.CodeBadRequest, "patch", true},
		{"rules.update patch with a wrong type", `{"id":1,"op":"rules.update","rule_id":"known","patch":{"times":"x"}}`, control.CodeBadRequest, "patch.times", true},
		{"rules.update patch to an invalid rule", `{"id":1,"op":"rules.update","rule_id":"known","patch":{"action":{"code":99}}}`, control.CodeInvalidRule, "action.code", true},
		{"rules.update patch changing the id", `{"id":1,"op":"rules.update","rule_id":"known","patch":{"id":"other"}}`, control.CodeBadRequest, "patch.id", true},
		{"rules.remove with neither id nor labels", `{"id":1,"op":"rules.remove"}`, control.CodeBadRequest, "rule_id", true},
		{"rules.replace with a bad rule", `{"id":1,"op":"rules.replace","rules":[{"action":{"type":"drop"}},{"action":{"type":"explode"}}]}`, control.CodeInvalidRule, "rules[1].action.type", true},
		{"scenarios.activate unknown", `{"id":1,"op":"scenarios.activate","name":"nope"}`, control.CodeUnknownScenario, "name", true},
		{"machines.set_state without state", `{"id":1,"op":"machines.set_state","machine":"m"}`, control.CodeBadRequest, "state", true},
		{"journal.query field of wrong type", `{"id":1,"op":"journal.query","query":{"rule":5}}`, control.CodeBadRequest, "query.rule", true},
		{"journal.query unknown method", `{"id":1,"op":"journal.query","query":{"method":"bindng"}}`, control.CodeBadRequest, "query.method", true},
		{"journal.count bad client", `{"id":1,"op":"journal.count","query":{"client":"localhost"}}`, control.CodeBadRequest, "query.client", true},
		{"journal.verify without expected", `{"id":1,"op":"journal.verify","query":{}}`, control.CodeBadRequest, "expected", true},
		{"webhook.set unknown name", `{"id":1,"op":"webhook.set","name":"crm","mode":"async"}`, control.CodeUnknownWebhook, "name", true},
		{"webhook.set bad mode", `{"id":1,"op":"webhook.set","name":"servicenow","mode":"later"}`, control.CodeBadRequest, "mode", true},
		{"webhook.set bad latency", `{"id":1,"op":"webhook.set","name":"servicenow","latency":150}`, control.CodeBadRequest, "latency", true},
		{"reset unknown scope", `{"id":1,"op":"reset","scope":["everything"]}`, control.CodeBadRequest, "scope[0]", true},
		{"reset scope of wrong type", `{"id":1,"op":"reset","scope":"rules"}`, control.CodeBadRequest, "scope", true},
		{"subscribe bad filter", `{"id":1,"op":"subscribe","filter":{"client":"not-an-address"}}`, control.CodeBadRequest, "filter.client", true},
		{"subscribe filter of wrong type", `{"id":1,"op":"subscribe","filter":"all"}`, control.CodeBadRequest, "filter", true},
		{"subscribe since_seq inside filter", `{"id":1,"op":"subscribe","filter":{"since_seq":3}}`, control.CodeBadRequest, "filter.since_seq", true},
		{"subscribe huge buffer", `{"id":1,"op":"subscribe","buffer":100000000}`, control.CodeBadRequest, "buffer", true},
		{"unsubscribe unknown", `{"id":1,"op":"unsubscribe","subscription":99}`, control.CodeNotFound, "subscription", true},
		{"clock.advance without by", `{"id":1,"op":"clock.advance"}`, control.CodeBadRequest, "by", true},
		{"clock.advance negative", `{"id":1,"op":"clock.advance","by":"-1s"}`, control.CodeBadRequest, "by", true},
		{"clock.advance not a duration", `{"id":1,"op":"clock.advance","by":30}`, control.CodeBadRequest, "by", true},
		{"clock.advance too far", `{"id":1,"op":"clock.advance","by":"9000h"}`, control.CodeBadRequest, "by", true},
		{"clock.advance on the system clock", `{"id":1,"op":"clock.advance","by":"30s"}`, control.CodeClockNotManual, "by", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := roundTrip(t, ws, tt.msg)
			if rep.OK || rep.Error == nil {
				t.Fatalf("got ok reply %+v, want error %s", rep, tt.code)
			}
			if rep.Error.Code != tt.code || rep.Error.Field != tt.field {
				t.Errorf("got code %q field %q (%s), want %q field %q", rep.Error.Code, rep.Error.Field, rep.Error.Message, tt.code, tt.field)
			}
			if rep.Error.Message == "" {
				t.Error("got an empty message")
			}
			if tt.echoID != (rep.ID != nil && *rep.ID == 1) {
				t.Errorf("got id %v, want echoed: %v", rep.ID, tt.echoID)
			}
			hello := roundTrip(t, ws, `{"id":1000,"op":"hello"}`)
			if !hello.OK || *hello.ID != 1000 {
				t.Fatalf("hello after bad message %d: got %+v", i, hello)
			}
		})
	}
	if len(ts.b.eng.List()) != 1 {
		t.Errorf("bad messages changed the rules: %d rules, want 1", len(ts.b.eng.List()))
	}
}

// A message far over the limit (8 MiB against 1 KiB) still gets the
// readable close frame, not a connection reset.
func TestHugeMessageGetsReadableClose(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{MaxFrameBytes: 1024})
	big := rawDial(t, ts)
	msg := `{"id":1,"op":"hello","x":"` + strings.Repeat("x", 8<<20) + `"}`
	_ = big.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = big.WriteMessage(websocket.TextMessage, []byte(msg)) // may fail once the server closes
	_ = big.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := big.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig || !strings.Contains(ce.Text, "frame limit") {
		t.Fatalf("8 MiB message: got %v, want close 1009 naming the frame limit", err)
	}
}

// A frame over MaxFrameBytes closes that connection only.
func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{MaxFrameBytes: 1024})
	big := rawDial(t, ts)
	other := ts.dial(t, nil)

	msg := `{"id":1,"op":"rules.add","rule":{"description":"` + strings.Repeat("x", 2000) + `","action":{"type":"drop"}}}`
	if err := big.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = big.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := big.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: got %v, want close 1009", err)
	}
	if want := "message over 1024 bytes, the control socket's frame limit"; ce.Text != want {
		t.Errorf("close reason %q, want %q", ce.Text, want)
	}
	if _, err := other.Hello(ctx(t)); err != nil {
		t.Fatalf("other client after the oversized frame: %v", err)
	}
	if len(ts.b.eng.List()) != 0 {
		t.Error("the oversized request was applied")
	}
	// Just under the limit is fine.
	ok := rawDial(t, ts)
	if rep := roundTrip(t, ok, `{"id":2,"op":"rules.add","rule":{"description":"`+strings.Repeat("x", 900)+`","action":{"type":"drop"}}}`); !rep.OK {
		t.Errorf("a frame under the limit: got %+v", rep.Error)
	}
}

// The client reports server errors as *control.Error with errors.As.
func TestClientErrorsAreControlErrors(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	_, _, err := c.AddRule(ctx(t), faults.Rule{Match: faults.Match{Methods: []string{"bindng"}}, Action: faults.Action{Type: "drop"}})
	var ce *control.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *control.Error", err, err)
	}
	if ce.Code != control.CodeInvalidRule || ce.Field != "match.methods[0]" || ce.Message != `match.methods[0]: unknown method "bindng" (want one of binding, allocate, refresh, createpermission, channelbind, send, data, channeldata)` {
		t.Errorf("got %+v", ce)
	}
	if _, err := c.GetRule(ctx(t), "nope"); !control.IsNotFound(err) {
		t.Errorf("got %v, want not_found", err)
	}
	if _, err := c.ActivateScenario(ctx(t), "nope"); codeOf(t, err) != control.CodeUnknownScenario {
		t.Errorf("got %v, want unknown_scenario", err)
	}
	if _, err := c.Call(ctx(t), "nope", nil, nil); codeOf(t, err) != control.CodeUnknownOp {
		t.Errorf("got %v, want unknown_op", err)
	}
}
