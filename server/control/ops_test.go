package control_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

func TestHello(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	h, err := c.Hello(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if h.Protocol != control.ProtocolVersion || h.Version != "test" || h.Seed != 42 {
		t.Errorf("got %+v, want protocol %d, version test, seed 42", h, control.ProtocolVersion)
	}
	if !slices.Equal(h.Ops, control.Ops()) || len(h.Ops) != len(control.Ops()) {
		t.Errorf("got ops %v, want the 28 of control.Ops", h.Ops)
	}
}

// A rule added over the socket decides the very next packet, and disabling
// it lets the next one through: no sleep in between.
func TestAddDisableEnableTakeEffectAtOnce(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)

	if v := ts.decide(); v.Fired() {
		t.Fatalf("before any rule: got %v by %q, want pass", v.Kind, v.Rule)
	}
	r, rev, err := c.AddRule(cx, rule403("screenpop-403"))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "screenpop-403" || rev != ts.b.eng.Revision() || rev == 0 {
		t.Errorf("got rule %q revision %d, want screenpop-403 at engine revision %d", r.ID, rev, ts.b.eng.Revision())
	}
	if v := ts.decide(); v.Kind != faults.Error || v.Action.Code != 403 {
		t.Fatalf("after rules.add: got %v, want error 403", v.Kind)
	}

	rev2, err := c.DisableRule(cx, "screenpop-403")
	if err != nil {
		t.Fatal(err)
	}
	if rev2 <= rev {
		t.Errorf("disable revision %d, want > %d", rev2, rev)
	}
	if v := ts.decide(); v.Fired() {
		t.Fatalf("after rules.disable: got %v, want pass", v.Kind)
	}
	if _, err := c.EnableRule(cx, "screenpop-403"); err != nil {
		t.Fatal(err)
	}
	if v := ts.decide(); v.Kind != faults.Error {
		t.Fatalf("after rules.enable: got %v, want error", v.Kind)
	}

	st, err := c.GetRule(cx, "screenpop-403")
	if err != nil {
		t.Fatal(err)
	}
	if st.Fired != 2 || st.Matched != 2 || !st.Rule.IsEnabled() {
		t.Errorf("rules.get: got fired %d matched %d enabled %v, want 2 2 true", st.Fired, st.Matched, st.Rule.IsEnabled())
	}
	list, err := c.ListRules(cx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Rule.ID != "screenpop-403" {
		t.Errorf("rules.list: got %v, want [screenpop-403]", list)
	}
	if l, _ := c.ListRulesByLabels(cx, map[string]string{"test": "other"}); len(l) != 0 {
		t.Errorf("rules.list by other label: got %d rules, want 0", len(l))
	}
}

func TestAddReplacesByID(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	var res control.RuleResult
	if _, err := c.Call(ctx(t), control.OpRulesAdd, control.AddRuleRequest{Rule: rule403("r")}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Replaced {
		t.Error("first add: got replaced, want new")
	}
	r := rule403("r")
	r.Action.Code = 500
	if _, err := c.Call(ctx(t), control.OpRulesAdd, control.AddRuleRequest{Rule: r}, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Replaced || res.Rule.Action.Code != 500 {
		t.Errorf("second add: got replaced %v code %d, want true 500", res.Replaced, res.Rule.Action.Code)
	}
	// A rule without an id gets one.
	got, _, err := c.AddRule(ctx(t), faults.Rule{Action: faults.Action{Type: "drop"}})
	if err != nil || got.ID == "" {
		t.Errorf("add without id: got %q, %v; want a generated id", got.ID, err)
	}
}

func TestUpdateMergePatch(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)
	if _, _, err := c.AddRule(cx, rule403("r")); err != nil {
		t.Fatal(err)
	}
	r, rev, err := c.UpdateRule(cx, "r", json.RawMessage(`{"action":{"code":500,"reason":null},"labels":{"extra":"yes"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Action.Code != 500 || r.Action.Reason != "" || r.Labels["extra"] != "yes" || r.Labels["test"] != "control" {
		t.Errorf("got action %+v labels %v, want code 500, no reason, both labels", r.Action, r.Labels)
	}
	if rev != ts.b.eng.Revision() {
		t.Errorf("got revision %d, want %d", rev, ts.b.eng.Revision())
	}
	if v := ts.decide(); v.Action == nil || v.Action.Code != 500 {
		t.Fatalf("after rules.update: got %+v, want error 500", v)
	}
	// Patches given as Go values work the same.
	if _, _, err := c.UpdateRule(cx, "r", map[string]any{"match": map[string]any{"methods": []string{"allocate"}}}); err != nil {
		t.Fatal(err)
	}
	if v := ts.decide(); v.Fired() {
		t.Errorf("after narrowing to allocate: got %v, want pass", v.Kind)
	}
}

func TestRemoveReplaceClear(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)
	for _, id := range []string{"a", "b"} {
		if _, _, err := c.AddRule(cx, rule403(id)); err != nil {
			t.Fatal(err)
		}
	}

	c2 := rule403("c")
	c2.Labels = map[string]string{"test": "other"}
	res, _, err := c.ReplaceRules(cx, []faults.Rule{rule403("b"), c2})
	if err != nil {
		t.Fatal(err)
	}
	want := control.ReplaceResult{Added: []string{"c"}, Removed: []string{"a"}, Replaced: []string{"b"}}
	if !slices.Equal(res.Added, want.Added) || !slices.Equal(res.Removed, want.Removed) || !slices.Equal(res.Replaced, want.Replaced) {
		t.Errorf("rules.replace: got %+v, want %+v", res, want)
	}

	// One bad rule: nothing changes.
	before := ts.b.eng.Revision()
	bad := rule403("d")
	bad.Match.Methods = []string{"bindng"}
	_, _, err = c.ReplaceRules(cx, []faults.Rule{rule403("x"), bad})
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeInvalidRule || ce.Field != "rules[1].match.methods[0]" {
		t.Fatalf("replace with a bad rule: got %v, want invalid_rule at rules[1].match.methods[0]", err)
	}
	if ts.b.eng.Revision() != before || len(ts.b.eng.List()) != 2 {
		t.Errorf("a failed replace changed the engine: revision %d -> %d, %d rules", before, ts.b.eng.Revision(), len(ts.b.eng.List()))
	}

	n, _, err := c.RemoveRulesByLabels(cx, map[string]string{"test": "other"})
	if err != nil || n != 1 {
		t.Errorf("remove by labels: got %d, %v; want 1", n, err)
	}
	if _, err := c.RemoveRule(cx, "b"); err != nil {
		t.Fatal(err)
	}
	if v := ts.decide(); v.Fired() {
		t.Errorf("after removing every rule: got %v, want pass", v.Kind)
	}
	if _, err := c.RemoveRule(cx, "b"); !control.IsNotFound(err) {
		t.Errorf("removing a removed rule: got %v, want not_found", err)
	}

	for _, id := range []string{"p", "q", "r"} {
		if _, _, err := c.AddRule(cx, rule403(id)); err != nil {
			t.Fatal(err)
		}
	}
	n, _, err = c.ClearRules(cx)
	if err != nil || n != 3 || len(ts.b.eng.List()) != 0 {
		t.Errorf("rules.clear: got %d, %v, %d left; want 3 removed, none left", n, err, len(ts.b.eng.List()))
	}
}

func TestScenariosAndMachines(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	if err := ts.b.eng.SetScenarios(map[string]faults.Scenario{
		"screenpop": {Rules: []faults.Rule{rule403("s403")}},
		"calm":      {},
	}); err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t, nil)
	cx := ctx(t)
	sc, err := c.Scenarios(cx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sc.Scenarios, []string{"calm", "screenpop"}) || sc.Active != "" {
		t.Errorf("scenarios.list: got %+v, want [calm screenpop], none active", sc)
	}
	if _, err := c.ActivateScenario(cx, "screenpop"); err != nil {
		t.Fatal(err)
	}
	if v := ts.decide(); v.Kind != faults.Error || v.Rule != "s403" {
		t.Errorf("after scenarios.activate: got %v by %q, want error by s403", v.Kind, v.Rule)
	}
	if sc, _ := c.Scenarios(cx); sc.Active != "screenpop" {
		t.Errorf("active scenario: got %q, want screenpop", sc.Active)
	}

	if _, err := c.SetMachineState(cx, "call", "ringing"); err != nil {
		t.Fatal(err)
	}
	m, err := c.Machines(cx)
	if err != nil || m["call"] != "ringing" {
		t.Errorf("machines.list: got %v, %v; want call=ringing", m, err)
	}
	if got := ts.b.eng.MachineStates()["call"]; got != "ringing" {
		t.Errorf("engine machine state: got %q, want ringing", got)
	}
}

func TestJournalOps(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)
	if _, _, err := c.AddRule(cx, rule403("r")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ts.decide()
	}

	q := faults.Query{Rule: "r", Method: "binding"}
	entries, err := c.QueryJournal(cx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Seq != 1 || entries[2].Seq != 3 || entries[0].Code != 403 ||
		entries[0].Client != clientAddr || entries[0].Labels["test"] != "control" {
		t.Errorf("journal.query: got %+v, want 3 entries, seq 1..3, code 403 from %v", entries, clientAddr)
	}
	if n, err := c.CountJournal(cx, faults.Query{Client: "127.0.0.0/8"}); err != nil || n != 3 {
		t.Errorf("journal.count: got %d, %v; want 3", n, err)
	}

	v, err := c.VerifyJournal(cx, q, 3)
	if err != nil || !v.Match || v.Actual != 3 || len(v.NearMisses) != 0 {
		t.Errorf("journal.verify, right count: got %+v, %v; want a match", v, err)
	}
	v, err = c.VerifyJournal(cx, faults.Query{Rule: "r", Method: "allocate", Labels: map[string]string{"test": "control"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Match || v.Actual != 0 || len(v.NearMisses) != 3 {
		t.Fatalf("journal.verify, wrong method: got %+v, want no match, 0 actual, 3 near misses", v)
	}
	if nm := v.NearMisses[0]; !slices.Equal(nm.Failed, []string{"method"}) || nm.Entry.Seq != 3 {
		t.Errorf("first near miss: got seq %d failing %v, want seq 3 failing [method]", nm.Entry.Seq, nm.Failed)
	}

	n, rev, err := c.ClearJournal(cx)
	if err != nil || n != 3 || ts.b.eng.Journal().Len() != 0 || rev != ts.b.eng.Revision() {
		t.Errorf("journal.clear: got %d, rev %d, %v, %d left; want 3, rev %d, none left", n, rev, err, ts.b.eng.Journal().Len(), ts.b.eng.Revision())
	}
}

func TestStatsAndReset(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)
	if _, _, err := c.AddRule(cx, rule403("r")); err != nil {
		t.Fatal(err)
	}
	ts.decide()
	if _, err := c.SetMachineState(cx, "m", "x"); err != nil {
		t.Fatal(err)
	}
	st, err := c.Stats(cx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Listeners) != 1 || st.Allocations == nil || st.Revision != ts.b.eng.Revision() ||
		len(st.Rules) != 1 || st.Rules[0].Fired != 1 || st.Journal.Len != 1 || st.Journal.LastSeq != 1 || st.Machines["m"] != "x" {
		t.Errorf("stats.get: got %+v", st)
	}

	if _, err := c.Reset(cx, control.ScopeCounters, control.ScopeMachines); err != nil {
		t.Fatal(err)
	}
	if s, _ := ts.b.eng.Get("r"); s.Fired != 0 {
		t.Errorf("after reset counters: fired %d, want 0", s.Fired)
	}
	if got := ts.b.eng.MachineStates()["m"]; got != "started" {
		t.Errorf("after reset machines: state %q, want started", got)
	}
	if ts.b.eng.Journal().Len() != 1 || len(ts.b.eng.List()) != 1 {
		t.Error("reset of counters and machines touched the journal or the rules")
	}
	if _, err := c.Reset(cx); err != nil {
		t.Fatal(err)
	}
	if ts.b.eng.Journal().Len() != 0 || len(ts.b.eng.List()) != 0 {
		t.Error("reset of everything left rules or journal entries")
	}
}

func TestSetWebhook(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	lat := faults.Duration(2e9)
	mode := "async"
	pending := 50
	if _, err := c.SetWebhook(ctx(t), "servicenow", control.WebhookSettings{Latency: &lat, Mode: &mode, SyntheticPending: &pending}); err != nil {
		t.Fatal(err)
	}
	got := ts.b.webhook("servicenow")
	if got.Latency == nil || *got.Latency != lat || got.Mode == nil || *got.Mode != "async" || got.Status != nil || *got.SyntheticPending != 50 {
		t.Errorf("backend got %+v, want latency 2s, mode async, 50 pending, no status", got)
	}
	if _, err := c.SetWebhook(ctx(t), "crm", control.WebhookSettings{}); codeOf(t, err) != control.CodeUnknownWebhook {
		t.Errorf("unknown webhook: got %v, want unknown_webhook", err)
	}
}

// Many clients changing rules at once, while traffic flows: each reply's
// revision is the one its change made, strictly increasing per client and
// never shared.
func TestRevisionsMonotonicAcrossClients(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	const clients, rounds = 8, 25
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for {
			select {
			case <-stop:
				return
			default:
				ts.decide()
			}
		}
	}()

	start := ts.b.eng.Revision()
	revs := make([][]uint64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := ts.dial(t, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cx := ctx(t)
			id := fmt.Sprintf("client-%d", i)
			for range rounds {
				_, rev, err := c.AddRule(cx, rule403(id))
				if err != nil {
					t.Error(err)
					return
				}
				revs[i] = append(revs[i], rev)
				for _, f := range []func() (uint64, error){
					func() (uint64, error) { return c.DisableRule(cx, id) },
					func() (uint64, error) { return c.EnableRule(cx, id) },
					func() (uint64, error) { return c.RemoveRule(cx, id) },
				} {
					rev, err := f()
					if err != nil {
						t.Error(err)
						return
					}
					revs[i] = append(revs[i], rev)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	traffic.Wait()

	seen := make(map[uint64]bool)
	for i, rs := range revs {
		for j, r := range rs {
			if j > 0 && r <= rs[j-1] {
				t.Errorf("client %d: revision %d after %d", i, r, rs[j-1])
			}
			if seen[r] {
				t.Errorf("revision %d answered twice", r)
			}
			seen[r] = true
		}
	}
	if got, want := ts.b.eng.Revision(), start+clients*rounds*4; got != want {
		t.Errorf("engine revision: got %d, want %d", got, want)
	}
}
