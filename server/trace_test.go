package server_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// tracePage is GET /trace's answer as a client reads it.
type tracePage struct {
	Messages []traceMessage `json:"messages"`
	Webhooks []struct {
		Webhook string   `json:"webhook"`
		Held    bool     `json:"held"`
		Rules   []string `json:"rules"`
	} `json:"webhooks"`
	LastSeq uint64 `json:"last_seq"`
	Size    int    `json:"size"`
}

// traceMessage is one of GET /trace's messages.
type traceMessage struct {
	Seq       uint64 `json:"seq"`
	Listener  string `json:"listener"`
	Local     string `json:"local"`
	Client    string `json:"client"`
	Transport string `json:"transport"`
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	Method    string `json:"method"`
	Class     string `json:"class"`
	TxID      string `json:"txid"`
	Size      int    `json:"size"`
	Count     int    `json:"count"`
	Decision  struct {
		Action     string `json:"action"`
		Rule       string `json:"rule"`
		Code       int    `json:"code"`
		JournalSeq uint64 `json:"journal_seq"`
	} `json:"decision"`
	Time time.Time `json:"time"`
}

func getTrace(t *testing.T, url string, since uint64) tracePage {
	t.Helper()
	return getTracePath(t, url, fmt.Sprintf("/trace?since=%d", since))
}

// getTracePath GETs path (GET /trace with its query) and decodes the page.
func getTracePath(t *testing.T, url, path string) tracePage {
	t.Helper()
	res, err := http.Get(url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /trace: status %d", res.StatusCode)
	}
	var p tracePage
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("GET /trace: %v", err)
	}
	return p
}

// waitTrace returns GET /trace since seq once ok holds for it. A message is
// recorded just after the effect that sent it, so the client may see an
// answer a moment before the trace holds it: wait on the ring's Changed,
// taken before each look so no recording is missed, for at most 5 s.
func waitTrace(t *testing.T, srv *server.Server, since uint64, ok func(tracePage) bool) tracePage {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		changed := srv.Trace().Changed()
		p := getTrace(t, srv.HTTPURL(), since)
		if ok(p) {
			return p
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the trace since %d never held what the test waits for; last: %+v", since, p)
		}
	}
}

// A Binding that passes is in the trace twice, request in and answer out,
// on the listener it came to; one a rule fails while a webhook is held
// carries the rule, the code and the journal's seq, and the webhook's span
// names the rule.
func TestTraceRecordsEveryMessage(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			rule := whRule("screenpop-403", 403, faults.WebhookMatch{MinInflight: 1})
			e := startWebhookRules(t, "sync", rule)
			c := newSTUNClient(t, e.srv, transport)
			e.wantBinding(t, c, 0, "", "no webhook held")
			// The client retransmits every 10 ms until it has an answer, so
			// a slow run may trace the request (and its answer) again.
			p := waitTrace(t, e.srv, 0, func(p tracePage) bool { return len(p.Messages) >= 2 && len(p.Messages)%2 == 0 })
			if n := len(p.Messages); n < 2 || n%2 != 0 || p.Size != 10000 || p.LastSeq != p.Messages[n-1].Seq {
				t.Fatalf("trace after one Binding: got %+v, want its request and answer", p)
			}
			in, out := p.Messages[0], p.Messages[1]
			last := p.Messages[len(p.Messages)-1]
			wantListener := transport + " " + e.srv.TURNAddr(transport).String()
			for i, m := range p.Messages {
				if m.TxID != in.TxID || m.Direction != []string{"in", "out"}[i%2] {
					t.Errorf("message %d: got %s %s of %s, want the one transaction, in then out", i, m.Direction, m.Class, m.TxID)
				}
				if m.Transport != transport || m.Listener != wantListener || m.Local != e.srv.TURNAddr(transport).String() ||
					m.Method != "binding" || m.Kind != "stun" || m.Decision.Action != "pass" || m.Decision.Rule != "" {
					t.Errorf("message %d: got %+v, want a passed binding on %s", i, m, wantListener)
				}
			}
			if in.Direction != "in" || in.Class != "request" || out.Direction != "out" || out.Class != "success" ||
				in.TxID != out.TxID || len(in.TxID) != 24 || in.Client != out.Client || in.Client == "" {
				t.Errorf("request %+v and answer %+v: want one transaction, in then out, to one client", in, out)
			}

			e.hold(t, 1, whTicketBody, nil)
			e.wantBinding(t, c, 403, rule.ID, "webhook held")
			hasRule := func(m traceMessage) bool { return m.Decision.Rule != "" }
			p = waitTrace(t, e.srv, last.Seq, func(p tracePage) bool { return slices.IndexFunc(p.Messages, hasRule) >= 0 })
			i := slices.IndexFunc(p.Messages, hasRule)
			if i < 0 {
				t.Fatalf("no message traced with a rule after the 403: %+v", p.Messages)
			}
			fired := p.Messages[i]
			entries := e.srv.Faults().Journal().Query(faults.Query{Rule: rule.ID})
			if len(entries) == 0 {
				t.Fatal("no journal entry for the 403")
			}
			if fired.Direction != "in" || fired.Decision.Action != "error" || fired.Decision.Rule != rule.ID ||
				fired.Decision.Code != 403 || fired.Decision.JournalSeq != entries[0].Seq {
				t.Errorf("failed Binding: got %+v, want rule %s, code 403, journal seq %d", fired, rule.ID, entries[0].Seq)
			}
			// The injected error is stunfault's, not pion's: no out message.
			for _, m := range p.Messages {
				if m.Direction == "out" && m.TxID == fired.TxID {
					t.Errorf("traced an outbound %s %s after the 403, want none", m.Method, m.Class)
				}
			}
			if len(p.Webhooks) != 1 || !p.Webhooks[0].Held || fmt.Sprint(p.Webhooks[0].Rules) != "["+rule.ID+"]" {
				t.Errorf("webhook spans: got %+v, want the held request, naming %s", p.Webhooks, rule.ID)
			}
		})
	}
}

// The answer pion writes to a request is stamped with the time its
// request was read (one clock read for both), and the next read with a
// later one: times never go back.
func TestTraceAnswerHasItsReadsTime(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			srv := startServer(t, nil)
			conn, err := net.Dial(transport, srv.TURNAddr(transport).String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			binding := func() {
				req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
				if _, err := conn.Write(req.Raw); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Read(make([]byte, 1500)); err != nil {
					t.Fatalf("no answer: %v", err)
				}
			}
			binding()
			binding()
			p := waitTrace(t, srv, 0, func(p tracePage) bool { return len(p.Messages) >= 4 })
			m := p.Messages
			if len(m) != 4 || m[0].Class != "request" || m[1].Class != "success" || m[2].Class != "request" {
				t.Fatalf("trace after two Bindings: got %+v, want request, answer, request, answer", m)
			}
			if !m[1].Time.Equal(m[0].Time) || !m[3].Time.Equal(m[2].Time) {
				t.Errorf("answers at %v and %v, want their requests' times %v and %v", m[1].Time, m[3].Time, m[0].Time, m[2].Time)
			}
			if !m[2].Time.After(m[1].Time) {
				t.Errorf("second request at %v, want after the first answer's %v", m[2].Time, m[1].Time)
			}
		})
	}
}

// A message pion does not answer (a Binding indication) is in the trace
// as well, recorded as it is read; a request is recorded with its answer.
func TestTraceUnansweredMessage(t *testing.T) {
	srv := startServer(t, nil)
	conn, err := net.Dial("udp", srv.TURNAddr("udp").String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication), stun.Fingerprint)
	if _, err := conn.Write(ind.Raw); err != nil {
		t.Fatal(err)
	}
	p := waitTrace(t, srv, 0, func(p tracePage) bool { return len(p.Messages) >= 1 })
	if m := p.Messages[0]; len(p.Messages) != 1 || m.Class != "indication" || m.Direction != "in" || m.Method != "binding" {
		t.Fatalf("trace after a Binding indication: got %+v, want it alone", p.Messages)
	}
}

// trace_size = 0 turns the trace off: nothing is recorded, /trace is empty.
func TestTraceOff(t *testing.T) {
	cfg := testConfig()
	cfg.Server.TraceSize = 0
	srv := startServer(t, &cfg)
	if srv.Trace() != nil {
		t.Fatal("Trace() with trace_size 0: want nil")
	}
	if _, err := stunBinding(t, newSTUNClient(t, srv, "udp")); err != nil {
		t.Fatal(err)
	}
	if p := getTrace(t, srv.HTTPURL(), 0); len(p.Messages) != 0 || p.Size != 0 {
		t.Fatalf("GET /trace with the trace off: got %+v, want nothing", p)
	}
}

// With a token set, /trace and /capture.pcapng want it (they show what
// clients sent); /metrics stays open like /healthz.
func TestTraceEndpointsToken(t *testing.T) {
	cfg := testConfig()
	cfg.HTTP.Token = "s3cret"
	srv := startServer(t, &cfg)
	for _, tc := range []struct {
		path  string
		token string
		want  int
	}{
		{"/trace", "", http.StatusUnauthorized},
		{"/trace", "s3cret", http.StatusOK},
		{"/capture.pcapng", "", http.StatusUnauthorized},
		{"/capture.pcapng", "s3cret", http.StatusOK},
		{"/metrics", "", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, srv.HTTPURL()+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET %s with token %q: got %d, want %d", tc.path, tc.token, res.StatusCode, tc.want)
		}
	}
}

// Relayed data through a real allocation is in the trace as summaries
// (count per allocation, direction and second), not one entry each.
func TestTraceSummarizesRelayedData(t *testing.T) {
	srv := startServer(t, nil)
	tc := newTURNClient(t, srv, "udp", "user", "pass")
	relay, err := tc.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	const n = 5
	buf := make([]byte, 1500)
	for i := range n {
		if _, err := relay.WriteTo([]byte("media"), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(whWait))
		if _, _, err := peer.ReadFrom(buf); err != nil {
			t.Fatalf("relayed datagram %d did not reach the peer: %v", i, err)
		}
	}
	p := getTrace(t, srv.HTTPURL(), 0)
	relayed := 0
	for _, m := range p.Messages {
		switch {
		case m.Kind == "relay_summary" && m.Direction == "in":
			relayed += m.Count
		case m.Kind == "channeldata" || (m.Method == "send" && m.Class == "indication"):
			t.Errorf("relayed data kept one by one: %+v", m)
		}
	}
	if relayed != n {
		t.Errorf("relay summaries count %d inbound messages, want %d", relayed, n)
	}
}
