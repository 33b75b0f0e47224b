package faults

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
)

func TestChangeSaysWhatEachMutationDid(t *testing.T) {
	e := NewEngine(EngineOptions{})
	drop := func(id string) Rule { return Rule{ID: id, Action: Action{Type: "drop"}} }
	tests := []struct {
		name string
		do   func() (Change, error)
		want Change // Revision and Rules not compared
		bump bool
	}{
		{"add new", func() (Change, error) { return e.Add(drop("a")) }, Change{Added: []string{"a"}}, true},
		{"add known", func() (Change, error) { return e.Add(drop("a")) }, Change{Replaced: []string{"a"}}, true},
		{"add all", func() (Change, error) { return e.AddAll([]Rule{drop("b"), drop("a"), drop("c")}) },
			Change{Added: []string{"b", "c"}, Replaced: []string{"a"}}, true},
		{"add all, none", func() (Change, error) { return e.AddAll(nil) }, Change{}, false},
		{"update", func() (Change, error) {
			return e.Update("b", func(r *Rule) error { r.Times = 3; return nil })
		}, Change{Replaced: []string{"b"}}, true},
		{"disable", func() (Change, error) { return e.SetEnabled("c", false) }, Change{}, true},
		{"remove", func() (Change, error) { return e.Remove("c") }, Change{Removed: []string{"c"}}, true},
		{"replace", func() (Change, error) { return e.Replace([]Rule{drop("b"), drop("d")}) },
			Change{Added: []string{"d"}, Replaced: []string{"b"}, Removed: []string{"a"}}, true},
		{"remove by labels, none", func() (Change, error) { return e.RemoveByLabels(map[string]string{"x": "y"}), nil }, Change{}, false},
		{"clear", func() (Change, error) { return e.Clear(), nil }, Change{Removed: []string{"b", "d"}}, true},
	}
	for _, tt := range tests {
		before := e.Revision()
		ch, err := tt.do()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if ch.Revision != e.Revision() {
			t.Errorf("%s: Change.Revision %d, engine at %d", tt.name, ch.Revision, e.Revision())
		}
		if bumped := ch.Revision != before; bumped != tt.bump {
			t.Errorf("%s: revision %d -> %d, want bumped %v", tt.name, before, ch.Revision, tt.bump)
		}
		got := Change{Added: ch.Added, Replaced: ch.Replaced, Removed: ch.Removed}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if st, _ := e.Get("b"); st.Rule.Times != 0 {
		t.Errorf("replace kept the update of b: times %d", st.Rule.Times)
	}
}

func TestAddAllIsAllOrNothing(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "old", Action: Action{Type: "drop"}})
	before := e.Revision()
	_, err := e.AddAll([]Rule{
		{ID: "ok", Action: Action{Type: "drop"}},
		{ID: "bad", Match: Match{Methods: []string{"bindng"}}, Action: Action{Type: "error", Code: 999}},
		{ID: "ok", Action: Action{Type: "drop"}},
	})
	var fields []string
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if want := []string{"rules[1].match.methods[0]", "rules[1].action.code", "rules[2].id"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("AddAll error fields = %v, want %v (error %v)", fields, want, err)
	}
	if e.Revision() != before || len(e.List()) != 1 {
		t.Errorf("a failed AddAll changed the engine: revision %d -> %d, %d rules", before, e.Revision(), len(e.List()))
	}

	// Generated IDs avoid the active rules and each other.
	mustAdd(t, e, Rule{ID: "rule-2", Action: Action{Type: "drop"}})
	ch, err := e.AddAll([]Rule{{Action: Action{Type: "drop"}}, {Action: Action{Type: "drop"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := []string{ch.Rules[0].ID, ch.Rules[1].ID}; !reflect.DeepEqual(ids, ch.Added) || ids[0] == ids[1] || slices.Contains(ids, "rule-2") {
		t.Errorf("generated IDs %v (added %v), want two new ones other than rule-2", ids, ch.Added)
	}
}

func TestUpdateErrorsChangeNothing(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "r", Action: Action{Type: "drop"}})
	before := e.Revision()
	for name, f := range map[string]func(*Rule) error{
		"f fails":    func(*Rule) error { return fmt.Errorf("no") },
		"invalid":    func(r *Rule) error { r.Action.Type = "explode"; return nil },
		"changes id": func(r *Rule) error { r.ID = "other"; return nil },
	} {
		if _, err := e.Update("r", f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := e.Update("nope", func(*Rule) error { return nil }); err == nil {
		t.Error("update of an unknown rule: no error")
	}
	if st, _ := e.Get("r"); e.Revision() != before || st.Rule.Action.Type != "drop" {
		t.Errorf("failed updates changed the engine: revision %d -> %d, rule %+v", before, e.Revision(), st.Rule)
	}
}

// Writers racing each other each learn exactly what their own call did:
// one of many adds of a new ID is the add, the rest replace; every change
// has its own revision, with none skipped; no update is lost; and every
// rule added is counted by exactly one Clear, or is still there.
func TestConcurrentChangesAreAtomic(t *testing.T) {
	e := NewEngine(EngineOptions{})
	mustAdd(t, e, Rule{ID: "counter", Action: Action{Type: "drop"}})
	start := e.Revision()
	const workers, rounds = 8, 50

	var mu sync.Mutex
	revs := map[uint64]string{}
	record := func(what string, ch Change) {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := revs[ch.Revision]; dup {
			t.Errorf("revision %d made by both %s and %s", ch.Revision, prev, what)
		}
		revs[ch.Revision] = what
	}
	var added, cleared, sameNew int
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				ch, err := e.Update("counter", func(r *Rule) error { r.Times++; return nil })
				if err != nil {
					t.Error(err)
					return
				}
				record("update", ch)

				ch, err = e.Add(Rule{ID: "same", Action: Action{Type: "drop"}})
				if err != nil {
					t.Error(err)
					return
				}
				record("add same", ch)
				ch2, err := e.Add(Rule{ID: fmt.Sprintf("w%d-%d", w, i), Labels: map[string]string{"churn": "1"}, Action: Action{Type: "drop"}})
				if err != nil {
					t.Error(err)
					return
				}
				record("add", ch2)
				var ch3 Change
				if i%10 == 9 {
					ch3 = e.RemoveByLabels(map[string]string{"churn": "1"})
					if len(ch3.Removed) > 0 {
						record("remove by labels", ch3)
					}
				}
				mu.Lock()
				sameNew += len(ch.Added)
				added += len(ch2.Added)
				cleared += len(ch3.Removed)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	st, err := e.Get("counter")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rule.Times != workers*rounds {
		t.Errorf("counter times = %d after %d increments: updates lost", st.Rule.Times, workers*rounds)
	}
	if sameNew != 1 {
		t.Errorf("%d adds of rule \"same\" said they added it, want exactly 1", sameNew)
	}
	left := len(e.ListByLabels(map[string]string{"churn": "1"}))
	if cleared+left != added {
		t.Errorf("removed %d + left %d != added %d", cleared, left, added)
	}
	end := e.Revision()
	if int(end-start) != len(revs) {
		t.Errorf("revisions %d..%d for %d changes", start, end, len(revs))
	}
	for r := start + 1; r <= end; r++ {
		if _, ok := revs[r]; !ok {
			t.Errorf("revision %d reported by no change", r)
		}
	}
}
