package control

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stunfault/stunfault/faults"
)

// maxDecodeErrorReply bounds the reply to a message the decoder refuses,
// whatever the message: errors quote at most maxEchoBytes of it.
const maxDecodeErrorReply = 512

// decodeCodes are the codes decodeRequest answers with.
var decodeCodes = []string{CodeBadJSON, CodeMissingID, CodeBadRequest, CodeUnknownOp}

// replyCodes are the codes an op answers a request with (the /api
// handler's own refusals, unauthorized and the like, come before it).
var replyCodes = []string{
	CodeBadJSON, CodeUnknownOp, CodeMissingID, CodeBadRequest, CodeNotFound,
	CodeInvalidRule, CodeUnknownScenario, CodeUnknownWebhook, CodeLimitExceeded,
	CodeClockNotManual, CodeUnknownAllocation, CodeInternal,
}

// docRequests returns every request docs/control.md shows ("-> {...}",
// possibly continued on indented lines), in order.
func docRequests(t testing.TB) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/control.md")
	if err != nil {
		t.Fatalf("reading the examples: %v", err)
	}
	var out []string
	var cur strings.Builder
	open := false
	for line := range strings.SplitSeq(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "-> "); ok {
			if open {
				t.Fatalf("docs/control.md: request %q is not JSON", cur.String())
			}
			cur.Reset()
			cur.WriteString(rest)
			open = true
		} else if open {
			cur.WriteString(strings.TrimSpace(line))
		}
		if open && json.Valid([]byte(cur.String())) {
			out = append(out, cur.String())
			open = false
		}
	}
	if open {
		t.Fatalf("docs/control.md: request %q is not JSON", cur.String())
	}
	if len(out) < 20 {
		t.Fatalf("found %d requests in docs/control.md, want every op's example", len(out))
	}
	return out
}

// apiForm returns a WebSocket request as the body of POST /api/{op}: the
// op moves to the URL, the id goes.
func apiForm(t testing.TB, msg string) (body, op string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(m["op"], &op); err != nil {
		t.Fatal(err)
	}
	delete(m, "op")
	delete(m, "id")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), op
}

// Every request docs/control.md shows decodes, over the socket and as an
// /api body.
func TestDocRequestsDecode(t *testing.T) {
	for _, msg := range docRequests(t) {
		env, e := decodeRequest([]byte(msg), "", true)
		if e != nil || env.id == nil {
			t.Errorf("%s: got %+v, id %v; want it decoded with its id", msg, e, env.id)
			continue
		}
		body, op := apiForm(t, msg)
		if env2, e := decodeRequest([]byte(body), op, false); e != nil || env2.op != env.op {
			t.Errorf("POST /api/%s %s: got %+v, op %q", op, body, e, env2.op)
		}
	}
}

// fuzzBackend is a Backend around a fresh engine, for one fuzz input.
type fuzzBackend struct{ eng *faults.Engine }

func (b fuzzBackend) Engine() *faults.Engine    { return b.eng }
func (b fuzzBackend) Clock() faults.Clock       { return faults.SystemClock{} }
func (b fuzzBackend) Hello() Hello              { return Hello{Version: "fuzz"} }
func (b fuzzBackend) Stats() Stats              { return Stats{} }
func (b fuzzBackend) Allocations() []Allocation { return nil }
func (b fuzzBackend) ExpireAllocations(context.Context, AllocationSelector) ([]Allocation, error) {
	return nil, ErrUnknownAllocation
}
func (b fuzzBackend) ExpirePermissions(context.Context, PermissionSelector) ([]ExpiredPermission, error) {
	return nil, ErrUnknownAllocation
}
func (b fuzzBackend) ExpireChannels(context.Context, ChannelSelector) ([]ExpiredChannel, error) {
	return nil, ErrUnknownAllocation
}
func (b fuzzBackend) SetWebhook(context.Context, string, WebhookSettings) error {
	return nil
}

// FuzzDecodeRequest feeds the control decoder arbitrary messages, over the
// socket (urlOp "") and as POST /api/{urlOp} bodies. The decoder never
// panics; it answers every message with a request (an op it serves, an id
// over the socket) or an error of a decoder code with a small reply; a
// decoded request encodes back to a message that decodes to the same
// request. Then the op runs against a fresh engine: its reply carries a
// documented code when it fails, and its size is bounded by the message's.
func FuzzDecodeRequest(f *testing.F) {
	for _, msg := range docRequests(f) {
		f.Add([]byte(msg), "")
		body, op := apiForm(f, msg)
		f.Add([]byte(body), op)
	}
	for _, seed := range []string{
		``, `hello`, `null`, `[]`, `{}`, `{"id":1}`, `{"id":-1,"op":"hello"}`, `{"id":1.5,"op":"hello"}`,
		`{"id":18446744073709551616,"op":"hello"}`, `{"id":1,"op":7}`, `{"id":1,"op":"rules.explode"}`,
		`{"id":1,"op":"hello","op":"stats.get"}`, `{"id":1,"op":"hello","verbose":true}`,
		`{"id":1,"op":"rules.replace","rules":[{},{},{}]}`, `{"id":1,"op":"rules.add","rule":{"mach":{}}}`,
		"{\"id\":1,\"op\":\"he\xffllo\"}",
	} {
		f.Add([]byte(seed), "")
	}
	f.Fuzz(func(t *testing.T, data []byte, urlOp string) {
		socket := urlOp == ""
		env, e := decodeRequest(data, urlOp, socket)
		if e != nil {
			if !slices.Contains(decodeCodes, e.Code) || e.Message == "" {
				t.Fatalf("%q: error %+v, want a decoder code and a message", data, e)
			}
			if env.op != "" || env.params != nil {
				t.Fatalf("%q: error %+v with op %q params %v", data, e, env.op, env.params)
			}
			b, err := json.Marshal(Reply{ID: env.id, Error: e})
			if err != nil || len(b) > maxDecodeErrorReply {
				t.Fatalf("%q: error reply of %d bytes (%v), want at most %d", data, len(b), err, maxDecodeErrorReply)
			}
		} else {
			if _, ok := ops[env.op]; !ok || env.params == nil || (socket && env.id == nil) {
				t.Fatalf("%q: decoded op %q id %v params %v", data, env.op, env.id, env.params)
			}
			// Round trip: the envelope as a message decodes to itself.
			m := maps.Clone(env.params)
			op, _ := json.Marshal(env.op)
			m["op"] = op
			if env.id != nil {
				id, _ := json.Marshal(*env.id)
				m["id"] = id
			}
			again, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("%q: re-encoding: %v", data, err)
			}
			env2, e := decodeRequest(again, "", env.id != nil)
			if e != nil || env2.op != env.op || !sameID(env.id, env2.id) || !sameParams(env.params, env2.params) {
				t.Fatalf("%q: re-encoded as %s, decoded to op %q id %v params %s (%+v)", data, again, env2.op, env2.id, mustJSON(env2.params), e)
			}
		}

		// The op itself, against a fresh engine, as POST /api would.
		h := NewHandler(fuzzBackend{faults.NewEngine(faults.EngineOptions{Seed: 1})}, HandlerOptions{})
		rep, _ := h.handle(t.Context(), nil, data, urlOp)
		if rep.Error != nil && !slices.Contains(replyCodes, rep.Error.Code) {
			t.Fatalf("%q: reply error code %q, want a documented one", data, rep.Error.Code)
		}
		if rep.OK == (rep.Error != nil) {
			t.Fatalf("%q: reply ok %v with error %+v", data, rep.OK, rep.Error)
		}
		if rep.Error != nil && len(rep.Error.Details) > MaxErrorDetails {
			t.Fatalf("%q: %d error details, want at most %d", data, len(rep.Error.Details), MaxErrorDetails)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatalf("%q: encoding the reply: %v", data, err)
		}
		// JSON escaping turns one byte into at most six ("<" is \u003c),
		// and each rule a reply lists gains its defaults.
		if limit := 32<<10 + 8*len(data); len(b) > limit {
			t.Fatalf("%q: reply of %d bytes, want at most %d", data, len(b), limit)
		}
	})
}

func sameID(a, b *uint64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// sameParams compares parameters as compact JSON.
func sameParams(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			return false
		}
		// Compare values, not bytes: json.Marshal escapes &, < and > in
		// the RawMessage it re-encodes ("&" comes back as "\u0026").
		// Numbers compare as their text, which the round trip keeps: as
		// float64, 1e700 would not decode at all.
		cv, errV := decodeValue(v)
		cw, errW := decodeValue(w)
		if errV != nil || errW != nil || !reflect.DeepEqual(cv, cw) {
			return false
		}
	}
	return true
}

// decodeValue decodes one JSON value with its numbers as json.Number.
func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A reply quotes at most a bounded part of a bad message, and lists at
// most MaxErrorDetails problems.
func TestErrorRepliesAreBounded(t *testing.T) {
	long := strings.Repeat("<", 100_000)
	tests := []struct {
		name, msg, urlOp, code string
		limit                  int
	}{
		{"long unknown op", `{"id":1,"op":"` + long + `"}`, "", CodeUnknownOp, maxDecodeErrorReply},
		{"long op beside /api", `{"op":"` + long + `"}`, "hello", CodeBadRequest, maxDecodeErrorReply},
		{"long unknown /api op", `{}`, long, CodeUnknownOp, maxDecodeErrorReply},
		{"long id", `{"id":"` + long + `","op":"hello"}`, "", CodeBadRequest, maxDecodeErrorReply},
		{"long unknown field", `{"id":1,"op":"hello","` + long + `":1}`, "", CodeBadRequest, 1 << 10},
		{"10,000 bad rules", `{"id":1,"op":"rules.replace","rules":[{}` + strings.Repeat(`,{}`, 9_999) + `]}`, "", CodeInvalidRule, 32 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(fuzzBackend{faults.NewEngine(faults.EngineOptions{Seed: 1})}, HandlerOptions{})
			rep, _ := h.handle(t.Context(), nil, []byte(tt.msg), tt.urlOp)
			b, _ := json.Marshal(rep)
			if rep.Error == nil || rep.Error.Code != tt.code || len(b) > tt.limit {
				t.Errorf("got a reply of %d bytes, error %.200v; want %s in at most %d bytes", len(b), rep.Error, tt.code, tt.limit)
			}
		})
	}
}

func (b fuzzBackend) RotateNonces() uint64 { return 1 }

func (b fuzzBackend) CloseConnection(context.Context, string) error { return ErrUnknownAllocation }
