package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/config"
)

// docConfig is the config docs/control.md's examples run against: the
// scenarios and the webhook they name, on a manual clock for clock.advance.
const docConfig = `
[server]
clock = "manual"
seed = 42

[webhooks.servicenow]
latency = "30s"
mode = "sync"
status = 201

[[scenarios.calm.rules]]
id = "nat"
[scenarios.calm.rules.match]
direction = "out"
methods = ["binding"]
classes = ["success"]
[scenarios.calm.rules.action]
type = "mapped_address"
address = "203.0.113.7:40000"

[[scenarios.screenpop.rules]]
id = "screenpop-403"
priority = 10
[scenarios.screenpop.rules.match]
methods = ["binding"]
classes = ["request"]
[scenarios.screenpop.rules.match.webhook]
name = "servicenow"
min_inflight = 1
body = "ticket_id"
[scenarios.screenpop.rules.action]
type = "error"
code = 403
reason = "Forbidden"

[[scenarios.outage.steps]]
at = "0s"
[[scenarios.outage.steps]]
at = "5s"
[[scenarios.outage.steps.rules]]
id = "outage-403"
[scenarios.outage.steps.rules.match]
methods = ["binding"]
[scenarios.outage.steps.rules.action]
type = "error"
code = 403
[[scenarios.outage.steps]]
at = "60s"
`

// docSkips are the doc's requests the replay does not send, by op and id,
// each with why.
var docSkips = map[string]string{
	"allocations.expire#41": "needs a live TURN allocation of user \"user\"",
	"permissions.expire#43": "needs a live TURN allocation of user \"user\" with a permission",
	"channels.expire#44":    "needs the TURN allocation of a client at 127.0.0.1:50736 with a channel",
	"connections.close#48":  "needs the TCP connection of a client at 127.0.0.1:50737",
}

// docExchange is one `->` request of docs/control.md and the `<-` reply
// that follows it.
type docExchange struct {
	section  string // the "## " heading it is under
	line     int    // of the request
	request  string
	reply    string
	hasReply bool
}

// readDocExchanges returns the exchanges of the fenced blocks of path, in
// document order.
func readDocExchanges(t *testing.T, path string) []docExchange {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []docExchange
		section string
		fenced  bool
		cur     *strings.Builder // the item being read
		isReq   bool
	)
	flush := func() {
		if cur == nil {
			return
		}
		text := cur.String()
		if isReq {
			out[len(out)-1].request = text
		} else if n := len(out); n > 0 && !out[n-1].hasReply && !strings.HasPrefix(text, `{"event"`) {
			out[n-1].reply, out[n-1].hasReply = text, true
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```"):
			flush()
			fenced = !fenced
		case !fenced && strings.HasPrefix(l, "## "):
			section = strings.TrimPrefix(l, "## ")
		case !fenced:
		case strings.HasPrefix(l, "-> "):
			flush()
			out = append(out, docExchange{section: section, line: n})
			cur, isReq = &strings.Builder{}, true
			cur.WriteString(strings.TrimPrefix(l, "-> "))
		case strings.HasPrefix(l, "<- "):
			flush()
			cur, isReq = &strings.Builder{}, false
			cur.WriteString(strings.TrimPrefix(l, "<- "))
		case cur != nil && strings.HasPrefix(l, " "):
			cur.WriteString(strings.TrimSpace(l))
		default:
			flush()
		}
	}
	flush()
	return out
}

var (
	docOK       = regexp.MustCompile(`"ok":(true|false)`)
	docRevision = regexp.MustCompile(`"revision":(\d+)`)
)

// TestControlDocRevisions replays docs/control.md's examples, each "##"
// section against a fresh server on docConfig, and checks that every reply
// the doc shows has the `ok` and `revision` the server really returns.
func TestControlDocRevisions(t *testing.T) {
	t.Parallel()
	exchanges := readDocExchanges(t, "../docs/control.md")
	if len(exchanges) < 30 {
		t.Fatalf("found %d examples in docs/control.md, want at least 30: is the parser still right?", len(exchanges))
	}
	var sections []string
	bySection := map[string][]docExchange{}
	shown := map[string]bool{}
	for _, ex := range exchanges {
		var head struct {
			ID uint64 `json:"id"`
			Op string `json:"op"`
		}
		if json.Unmarshal([]byte(ex.request), &head) == nil {
			shown[head.Op+"#"+jsonString(head.ID)] = true
		}
		if _, ok := bySection[ex.section]; !ok {
			sections = append(sections, ex.section)
		}
		bySection[ex.section] = append(bySection[ex.section], ex)
	}
	for key := range docSkips {
		if !shown[key] {
			t.Errorf("docSkips has %s, which docs/control.md no longer shows: drop it", key)
		}
	}
	for _, section := range sections {
		t.Run(section, func(t *testing.T) {
			cfg, err := config.Parse([]byte(docConfig), "docConfig")
			if err != nil {
				t.Fatal(err)
			}
			cfg.HTTP.Address = "127.0.0.1:0"
			srv := startServer(t, &cfg)
			ws, _, err := websocket.DefaultDialer.Dial(srv.ControlURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			for _, ex := range bySection[section] {
				replayDocExchange(t, ws, ex)
			}
		})
	}
}

func replayDocExchange(t *testing.T, ws *websocket.Conn, ex docExchange) {
	t.Helper()
	var head struct {
		ID *uint64 `json:"id"`
		Op string  `json:"op"`
	}
	if err := json.Unmarshal([]byte(ex.request), &head); err != nil {
		t.Errorf("docs/control.md:%d: the request is not JSON (%v): %s", ex.line, err, ex.request)
		return
	}
	key := head.Op + "#none"
	if head.ID != nil {
		key = head.Op + "#" + strings.TrimSpace(jsonString(*head.ID))
	}
	if reason, ok := docSkips[key]; ok {
		t.Logf("docs/control.md:%d: %s not sent: %s", ex.line, key, reason)
		return
	}
	if !ex.hasReply {
		t.Errorf("docs/control.md:%d: %s has no reply after it", ex.line, key)
		return
	}
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(ex.request)); err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	for {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("docs/control.md:%d: reading the reply to %s: %v", ex.line, key, err)
		}
		got = nil
		if err := json.Unmarshal(msg, &got); err != nil {
			t.Fatal(err)
		}
		if _, isEvent := got["event"]; !isEvent {
			t.Logf("docs/control.md:%d: %s\n  <- %s", ex.line, key, msg)
			break
		}
	}
	gotOK := string(got["ok"])
	gotRev := string(got["revision"])
	if gotRev == "" {
		var res struct {
			Revision json.RawMessage `json:"revision"`
		}
		_ = json.Unmarshal(got["result"], &res)
		gotRev = string(res.Revision)
	}
	wantOK, wantRev := "", ""
	if m := docOK.FindStringSubmatch(ex.reply); m != nil {
		wantOK = m[1]
	}
	if m := docRevision.FindStringSubmatch(ex.reply); m != nil {
		wantRev = m[1]
	}
	if gotOK != wantOK || gotRev != wantRev {
		t.Errorf("docs/control.md:%d: %s: the doc shows ok %s revision %q, the server says ok %s revision %q (error %s)",
			ex.line, key, wantOK, wantRev, gotOK, gotRev, got["error"])
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
