package control_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// Control clients and Go callers changing the same rules at once: no update
// is lost, exactly one add of a new ID says it was new, every reply and
// every Change has its own revision (none skipped), and rules.clear counts
// every rule it removed exactly once.
func TestControlAndGoChangesAreAtomic(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	eng := ts.b.eng
	if _, err := eng.Add(rule403("shared")); err != nil {
		t.Fatal(err)
	}
	start := eng.Revision()
	const clients, goCallers, rounds = 4, 4, 20

	var mu sync.Mutex
	revs := map[uint64]string{}
	var sameNew, added, removed int
	record := func(what string, rev uint64) {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := revs[rev]; dup {
			t.Errorf("revision %d answered to both %s and %s", rev, prev, what)
		}
		revs[rev] = what
	}
	count := func(n *int, k int) {
		mu.Lock()
		*n += k
		mu.Unlock()
	}

	var wg sync.WaitGroup
	for w := range clients {
		c := ts.dial(t, nil)
		wg.Go(func() {
			cx := ctx(t)
			for i := range rounds {
				// A merge patch adding one label: a lost update loses it.
				_, rev, err := c.UpdateRule(cx, "shared", map[string]any{"labels": map[string]string{fmt.Sprintf("c%d-%d", w, i): "x"}})
				if err != nil {
					t.Error(err)
					return
				}
				record("rules.update", rev)
				var res control.RuleResult
				rev, err = c.Call(cx, control.OpRulesAdd, control.AddRuleRequest{Rule: rule403("same")}, &res)
				if err != nil {
					t.Error(err)
					return
				}
				record("rules.add same", rev)
				if !res.Replaced {
					count(&sameNew, 1)
				}
				ar, rev, err := c.AddRules(cx, []faults.Rule{rule403(fmt.Sprintf("c%d-%d-a", w, i)), rule403(fmt.Sprintf("c%d-%d-b", w, i))})
				if err != nil {
					t.Error(err)
					return
				}
				record("rules.add rules", rev)
				count(&added, len(ar.Added))
				if i%5 == 4 {
					n, rev, err := c.RemoveRulesByLabels(cx, map[string]string{"churn": "c"})
					if err != nil {
						t.Error(err)
						return
					}
					if n > 0 {
						record("rules.remove", rev)
					}
					count(&removed, n)
				}
			}
		})
	}
	for w := range goCallers {
		wg.Go(func() {
			for i := range rounds {
				ch, err := eng.Update("shared", func(r *faults.Rule) error {
					r.Labels[fmt.Sprintf("g%d-%d", w, i)] = "x"
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				record("Update", ch.Revision)
				if ch, err = eng.Add(rule403("same")); err != nil {
					t.Error(err)
					return
				}
				record("Add same", ch.Revision)
				count(&sameNew, len(ch.Added))
				r := rule403(fmt.Sprintf("g%d-%d", w, i))
				r.Labels = map[string]string{"churn": "c"}
				if ch, err = eng.Add(r); err != nil {
					t.Error(err)
					return
				}
				record("Add", ch.Revision)
				count(&added, len(ch.Added))
			}
		})
	}
	wg.Wait()

	st, err := eng.Get("shared")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(st.Rule.Labels), 1+(clients+goCallers)*rounds; got != want {
		t.Errorf("shared rule has %d labels, want %d: updates were lost", got, want)
	}
	if sameNew != 1 {
		t.Errorf("%d adds of rule \"same\" said it was new, want exactly 1", sameNew)
	}
	c := ts.dial(t, nil)
	left, err := c.ListRules(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n, rev, err := c.ClearRules(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	record("rules.clear", rev)
	if n != len(left) {
		t.Errorf("rules.clear removed %d, rules.list had %d", n, len(left))
	}
	// Everything added is either removed by labels or cleared now (shared,
	// same and the rules.add batches have no churn label).
	if got, want := removed+n, added+2; got != want {
		t.Errorf("removed %d + cleared %d = %d, want the %d added + shared + same", removed, n, got, added)
	}
	end := eng.Revision()
	if int(end-start) != len(revs) {
		t.Errorf("revisions %d..%d for %d changes", start, end, len(revs))
	}
	for r := start + 1; r <= end; r++ {
		if _, ok := revs[r]; !ok {
			t.Errorf("revision %d was answered to no change", r)
		}
	}
}

func TestAddRulesIsOneChange(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	cx := ctx(t)
	if _, _, err := c.AddRule(cx, rule403("a")); err != nil {
		t.Fatal(err)
	}
	before := ts.b.eng.Revision()
	res, rev, err := c.AddRules(cx, []faults.Rule{rule403("b"), rule403("a"), {Action: faults.Action{Type: "drop"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rev != before+1 || rev != ts.b.eng.Revision() {
		t.Errorf("revision %d (engine %d), want %d: one change", rev, ts.b.eng.Revision(), before+1)
	}
	if len(res.Rules) != 3 || res.Rules[2].ID == "" || !reflect.DeepEqual(res.Added, []string{"b", res.Rules[2].ID}) || !reflect.DeepEqual(res.Replaced, []string{"a"}) {
		t.Errorf("got %+v, want b and a generated id added, a replaced", res)
	}

	// All or nothing, with every problem in the reply.
	bad := rule403("c")
	bad.Match.Methods = []string{"bindng"}
	_, _, err = c.AddRules(cx, []faults.Rule{rule403("d"), bad, {ID: "e", Action: faults.Action{Type: "error", Code: 999}}})
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeInvalidRule {
		t.Fatalf("got %v, want invalid_rule", err)
	}
	var fields []string
	for _, d := range ce.Details {
		fields = append(fields, d.Field)
	}
	if want := []string{"rules[1].match.methods[0]", "rules[2].action.code"}; ce.Field != want[0] || !reflect.DeepEqual(fields, want) {
		t.Errorf("got field %q details %v, want %v", ce.Field, fields, want)
	}
	if _, err := ts.b.eng.Get("d"); err == nil || ts.b.eng.Revision() != rev {
		t.Error("a rejected rules.add of several rules changed the rules")
	}

	// rule and rules together, or neither, are bad requests.
	for _, req := range []any{
		map[string]any{"rule": rule403("x"), "rules": []faults.Rule{rule403("y")}},
		map[string]any{},
		map[string]any{"rules": nil},
	} {
		if _, err := c.Call(cx, control.OpRulesAdd, req, nil); codeOf(t, err) != control.CodeBadRequest {
			t.Errorf("%v: got %v, want bad_request", req, err)
		}
	}
}

// The bounds on a rule's cost answer over the socket as invalid_rule,
// naming the field: an 800 KB username pattern, and a rule set too large.
func TestRuleBoundsOverControl(t *testing.T) {
	ts := newTestServer(t, control.HandlerOptions{})
	c := ts.dial(t, nil)
	r := rule403("huge")
	r.Match.Username = strings.Repeat("(a|b)", 160_000)
	_, _, err := c.AddRule(ctx(t), r)
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeInvalidRule || ce.Field != "match.username" || len(ce.Message) > 300 {
		t.Fatalf("got %v, want a short invalid_rule on match.username", err)
	}
	rules := make([]faults.Rule, faults.MaxRules+1)
	for i := range rules {
		rules[i] = faults.Rule{ID: fmt.Sprint("r", i), Action: faults.Action{Type: "drop"}}
	}
	_, _, err = c.ReplaceRules(ctx(t), rules)
	if !errors.As(err, &ce) || ce.Code != control.CodeInvalidRule || ce.Field != "rules" {
		t.Fatalf("rules.replace of 10001 rules: got %v, want invalid_rule on rules", err)
	}
	if n := len(ts.b.eng.List()); n != 0 {
		t.Errorf("%d rules active after refused changes, want 0", n)
	}
}
