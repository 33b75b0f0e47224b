package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// Every control op through the Go client against a running server, each
// checked by what the next real Binding gets (or what the server reports).
// The steps share one server and one client socket, in order.
func TestControlEveryOpOnRealTraffic(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Scenarios = map[string]config.Scenario{
		"forbidden": {Rules: []faults.Rule{{
			ID: "sc-403", Match: faults.Match{Methods: []string{"binding"}},
			Action: faults.Action{Type: "error", Code: 403},
		}}},
	}
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	want := func(step string, code int) {
		t.Helper()
		if got := bindingOutcome(t, conn); got != code {
			t.Fatalf("%s: Binding got code %d, want %d", step, got, code)
		}
	}
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	rule := func(id string, code int, labels map[string]string) faults.Rule {
		return faults.Rule{ID: id, Labels: labels, Match: faults.Match{Methods: []string{"binding"}},
			Action: faults.Action{Type: "error", Code: code}}
	}

	h, err := c.Hello(ctx)
	must("hello", err)
	if h.Seed != srv.Seed() || len(h.Ops) < 20 {
		t.Errorf("hello = %+v, want the server's seed and its ops", h)
	}
	want("no rules", 0)

	_, _, err = c.AddRule(ctx, rule("a", 403, map[string]string{"test": "ops"}))
	must("rules.add", err)
	want("rules.add", 403)

	_, _, err = c.UpdateRule(ctx, "a", map[string]any{"action": map[string]any{"code": 486}})
	must("rules.update", err)
	want("rules.update (merge patch)", 486)

	st, err := c.GetRule(ctx, "a")
	must("rules.get", err)
	if st.Fired != 1 || st.Rule.Action.Code != 486 {
		t.Errorf("rules.get = %+v, want code 486 fired once since the update", st)
	}
	list, err := c.ListRules(ctx)
	must("rules.list", err)
	if len(list) != 1 || list[0].Rule.ID != "a" {
		t.Errorf("rules.list = %+v", list)
	}

	_, err = c.DisableRule(ctx, "a")
	must("rules.disable", err)
	want("rules.disable", 0)
	_, err = c.EnableRule(ctx, "a")
	must("rules.enable", err)
	want("rules.enable", 486)

	n, _, err := c.RemoveRulesByLabels(ctx, map[string]string{"test": "ops"})
	must("rules.remove by labels", err)
	if n != 1 {
		t.Errorf("rules.remove by labels removed %d, want 1", n)
	}
	want("rules.remove by labels", 0)

	res, _, err := c.ReplaceRules(ctx, []faults.Rule{rule("b", 500, nil)})
	must("rules.replace", err)
	if len(res.Added) != 1 || res.Added[0] != "b" {
		t.Errorf("rules.replace = %+v, want b added", res)
	}
	want("rules.replace", 500)
	if _, _, err := c.ReplaceRules(ctx, []faults.Rule{rule("c", 403, nil), {ID: "bad", Action: faults.Action{Type: "explode"}}}); control.ErrorCode(err) != "invalid_rule" {
		t.Errorf("rules.replace with a bad rule: %v, want invalid_rule", err)
	}
	want("a refused rules.replace changes nothing", 500)

	_, _, err = c.ClearRules(ctx)
	must("rules.clear", err)
	want("rules.clear", 0)

	scs, err := c.Scenarios(ctx)
	must("scenarios.list", err)
	if len(scs.Scenarios) != 1 || scs.Scenarios[0] != "forbidden" {
		t.Errorf("scenarios.list = %+v", scs)
	}
	_, err = c.ActivateScenario(ctx, "forbidden")
	must("scenarios.activate", err)
	want("scenarios.activate", 403)
	_, _, err = c.ClearRules(ctx)
	must("rules.clear", err)

	// A two-state machine: the first Binding gets 403 and moves it on.
	_, _, err = c.AddRule(ctx, faults.Rule{
		ID: "once", Machine: "m", RequiresState: "started", SetsState: "done",
		Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403},
	})
	must("rules.add machine rule", err)
	want("machine in started", 403)
	want("machine in done", 0)
	ms, err := c.Machines(ctx)
	must("machines.list", err)
	if ms["m"] != "done" {
		t.Errorf("machines.list = %v, want m: done", ms)
	}
	_, err = c.SetMachineState(ctx, "m", "started")
	must("machines.set_state", err)
	want("machines.set_state back to started", 403)

	count, err := c.CountJournal(ctx, faults.Query{Rule: "once"})
	must("journal.count", err)
	entries, err := c.QueryJournal(ctx, faults.Query{Rule: "once"})
	must("journal.query", err)
	if count != 2 || len(entries) != 2 || entries[0].Code != 403 || entries[0].Method != "binding" {
		t.Errorf("journal.count = %d, journal.query = %+v; want 2 Binding 403s", count, entries)
	}
	v, err := c.VerifyJournal(ctx, faults.Query{Rule: "once", Method: "allocate"}, 2)
	must("journal.verify", err)
	if v.Match || v.Actual != 0 || len(v.NearMisses) == 0 {
		t.Errorf("journal.verify = %+v, want a mismatch with near misses (the Binding entries)", v)
	}

	stats, err := c.Stats(ctx)
	must("stats.get", err)
	if len(stats.Listeners) != 2 || stats.Allocations == nil {
		t.Errorf("stats.get = %+v, want both listeners and an allocation count", stats)
	}

	_, err = c.Reset(ctx)
	must("reset", err)
	want("reset (everything)", 0)
	if n, _ := c.CountJournal(ctx, faults.Query{}); n != 0 {
		t.Errorf("journal after reset has %d entries", n)
	}
	_, _, err = c.ClearJournal(ctx)
	must("journal.clear", err)

	// webhook.set: synthetic pending load makes a min_pending rule fire.
	_, _, err = c.AddRule(ctx, faults.Rule{
		ID: "load", Match: faults.Match{Methods: []string{"binding"},
			Webhook: &faults.WebhookMatch{Name: "servicenow", MinPending: 3}},
		Action: faults.Action{Type: "error", Code: 508},
	})
	must("rules.add webhook rule", err)
	want("no webhook load", 0)
	three, zero := 3, 0
	_, err = c.SetWebhook(ctx, "servicenow", control.WebhookSettings{SyntheticPending: &three})
	must("webhook.set", err)
	want("webhook.set synthetic_pending=3", 508)
	_, err = c.SetWebhook(ctx, "servicenow", control.WebhookSettings{SyntheticPending: &zero})
	must("webhook.set", err)
	want("webhook.set synthetic_pending=0", 0)
	if _, err := c.SetWebhook(ctx, "nope", control.WebhookSettings{SyntheticPending: &zero}); control.ErrorCode(err) != "unknown_webhook" {
		t.Errorf("webhook.set on an unknown webhook: %v, want unknown_webhook", err)
	}

	// subscribe with since_seq replays what the journal holds, then goes live.
	_, _, err = c.AddRule(ctx, rule("watched", 403, nil))
	must("rules.add", err)
	want("watched", 403)
	zeroSeq := uint64(0)
	sub, err := c.Subscribe(ctx, control.SubscribeRequest{Filter: faults.Query{Rule: "watched"}, SinceSeq: &zeroSeq})
	must("subscribe", err)
	if ev := nextEvent(t, sub); ev.Rule != "watched" || ev.Code != 403 {
		t.Errorf("replayed event = %+v", ev)
	}
	want("watched, live", 403)
	if ev := nextEvent(t, sub); ev.Rule != "watched" {
		t.Errorf("live event = %+v", ev)
	}
	must("unsubscribe", sub.Unsubscribe(ctx))
}

// nextEvent waits (bounded) for the subscription's next event.
func nextEvent(t *testing.T, sub *control.Subscription) control.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return control.Event{}
}
