package faults

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// compileGate holds the next compilation of one rule (by ID) until the test
// releases it, through the engine's compileHook.
type compileGate struct {
	id      string
	armed   atomic.Bool
	entered chan struct{} // closed once the held compilation has started
	release chan struct{} // closed by the test to let it go on
	calls   atomic.Int32  // compilations of the rule, held or not
}

// gateCompile installs a gate on e, which must not be in use yet. Arm it
// before the operation to hold.
func gateCompile(e *Engine, id string) *compileGate {
	g := &compileGate{id: id, entered: make(chan struct{}), release: make(chan struct{})}
	e.compileHook = func(r *Rule) {
		if r.ID != g.id {
			return
		}
		g.calls.Add(1)
		if g.armed.CompareAndSwap(true, false) {
			close(g.entered)
			<-g.release
		}
	}
	return g
}

// hold waits for the held compilation to start, and fails the test when
// e's lock is held then; finish waits for the held operation to end.
func (g *compileGate) hold(t *testing.T, e *Engine, finish func()) {
	t.Helper()
	<-g.entered
	if !e.mu.TryLock() {
		close(g.release)
		finish()
		t.Fatal("the engine's lock is held while a rule compiles")
	}
	e.mu.Unlock()
}

// TestCompileOutsideEngineLock holds the compilation of rule "slow" in each
// operation that compiles rules, and checks that meanwhile the engine's lock
// is free and operations that take it complete; once released, "slow"
// decides Binding requests.
func TestCompileOutsideEngineLock(t *testing.T) {
	pk := newTestPackets(t)
	slow := dropRule("slow", Match{Methods: []string{"binding"}, Username: "^(alice|bob):[a-z]+$"})
	slowOn := func(m Match) Rule { r := slow; r.Match = m; return r }
	plain := func(rules ...Rule) map[string]Scenario {
		return map[string]Scenario{"s": {Rules: rules}}
	}
	timed := map[string]Scenario{"t": {Steps: []Step{
		{At: 0, Rules: []Rule{dropRule("other", Match{Methods: []string{"allocate"}}), dropRule("gone", Match{Methods: []string{"send"}})}},
		{At: Duration(5 * time.Second), Rules: []Rule{slow}},
	}}}
	tests := []struct {
		name  string
		setup func(*Engine, *ManualClock) error // before the gate is armed
		op    func(*Engine, *ManualClock) error // the operation held
		// scenario is the active scenario after op, steps the step entries
		// journaled (their indexes), from setup on.
		scenario string
		steps    []int
	}{
		{name: "Add", op: func(e *Engine, _ *ManualClock) error { _, err := e.Add(slow); return err }},
		{name: "AddAll", op: func(e *Engine, _ *ManualClock) error {
			_, err := e.AddAll([]Rule{dropRule("more", Match{Methods: []string{"allocate"}}), slow})
			return err
		}},
		{name: "Update", setup: func(e *Engine, _ *ManualClock) error {
			_, err := e.Add(slowOn(Match{Methods: []string{"allocate"}}))
			return err
		}, op: func(e *Engine, _ *ManualClock) error {
			_, err := e.Update("slow", func(r *Rule) error { r.Match = slow.Match; return nil })
			return err
		}},
		{name: "Replace", op: func(e *Engine, _ *ManualClock) error { _, err := e.Replace([]Rule{slow}); return err }},
		{name: "SetScenarios then ActivateScenario", op: func(e *Engine, _ *ManualClock) error {
			if err := e.SetScenarios(plain(slow)); err != nil {
				return err
			}
			_, err := e.ActivateScenario("s")
			return err
		}, scenario: "s"},
		{name: "LoadScenarios then ActivateScenario", op: func(e *Engine, _ *ManualClock) error {
			if _, err := e.LoadScenarios(plain(slow)); err != nil {
				return err
			}
			_, err := e.ActivateScenario("s")
			return err
		}, scenario: "s"},
		{name: "ActivateScenario", setup: func(e *Engine, _ *ManualClock) error {
			return e.SetScenarios(plain(slow))
		}, op: func(e *Engine, _ *ManualClock) error { _, err := e.ActivateScenario("s"); return err }, scenario: "s"},
		{name: "ActivateScenario timed", setup: func(e *Engine, _ *ManualClock) error {
			return e.SetScenarios(map[string]Scenario{"t": {Steps: []Step{{At: 0, Rules: []Rule{slow}}}}})
		}, op: func(e *Engine, _ *ManualClock) error { _, err := e.ActivateScenario("t"); return err }, scenario: "t", steps: []int{0}},
		{name: "timed scenario step", setup: func(e *Engine, _ *ManualClock) error {
			if err := e.SetScenarios(timed); err != nil {
				return err
			}
			_, err := e.ActivateScenario("t")
			return err
		}, op: func(_ *Engine, clk *ManualClock) error { clk.Advance(5 * time.Second); return nil }, scenario: "t", steps: []int{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			e := NewEngine(EngineOptions{Clock: clk})
			g := gateCompile(e, "slow")
			if tt.setup != nil {
				if err := tt.setup(e, clk); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"other", "gone"} {
				if _, err := e.Get(id); err != nil {
					mustAdd(t, e, dropRule(id, Match{Methods: []string{"allocate"}}))
				}
			}
			g.armed.Store(true)
			done := make(chan error, 1)
			go func() { done <- tt.op(e, clk) }()
			g.hold(t, e, func() { <-done })
			fail := func(format string, args ...any) {
				t.Helper()
				close(g.release)
				<-done
				t.Fatalf(format, args...)
			}
			// Operations that take the lock complete while "slow" compiles.
			if _, err := e.SetEnabled("other", false); err != nil {
				fail("SetEnabled: %v", err)
			}
			if _, err := e.Remove("gone"); err != nil {
				fail("Remove: %v", err)
			}
			if err := e.SetMachineState("m", "x"); err != nil {
				fail("SetMachineState: %v", err)
			}
			if st, err := e.Get("other"); err != nil || st.Rule.IsEnabled() {
				fail("Get(other) = %+v, %v; want it disabled", st, err)
			}
			close(g.release)
			if err := <-done; err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			st, err := e.Get("slow")
			if err != nil {
				t.Fatalf("after %s: %v", tt.name, err)
			}
			if got := st.Rule.Match; got.Username != slow.Match.Username || !slices.Equal(got.Methods, slow.Match.Methods) {
				t.Errorf("rule slow matches %+v, want %+v", got, slow.Match)
			}
			if v := e.Decide(fresh(pk.bindSigned)); v.Rule != "slow" || v.Kind != Drop {
				t.Errorf("a Binding request from alice got %+v, want slow's drop", v)
			}
			if v := e.Decide(fresh(pk.bind)); v.Rule != "" {
				t.Errorf("a Binding request without USERNAME got %+v, want a pass", v)
			}
			if got := e.Scenario(); got != tt.scenario {
				t.Errorf("active scenario %q, want %q", got, tt.scenario)
			}
			var steps []int
			for _, en := range e.Journal().Query(Query{}) {
				if en.Step != nil {
					steps = append(steps, en.Step.Index)
				}
			}
			if !slices.Equal(steps, tt.steps) {
				t.Errorf("steps journaled %v, want %v", steps, tt.steps)
			}
		})
	}
}

// TestCompileOutsideLockRetries changes what an operation compiled while it
// compiles it: the operation starts over from the new state, and loses
// neither change.
func TestCompileOutsideLockRetries(t *testing.T) {
	pk := newTestPackets(t)
	t.Run("Update", func(t *testing.T) {
		e := NewEngine(EngineOptions{})
		g := gateCompile(e, "slow")
		mustAdd(t, e, dropRule("slow", Match{Methods: []string{"allocate"}}))
		g.armed.Store(true)
		var runs atomic.Int32
		done := make(chan error, 1)
		go func() {
			_, err := e.Update("slow", func(r *Rule) error {
				runs.Add(1)
				r.Times = 7
				return nil
			})
			done <- err
		}()
		g.hold(t, e, func() { <-done })
		if _, err := e.SetEnabled("slow", false); err != nil {
			t.Error(err)
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st, err := e.Get("slow")
		if err != nil {
			t.Fatal(err)
		}
		if st.Rule.Times != 7 || st.Rule.IsEnabled() {
			t.Errorf("rule slow has times %d, enabled %v; want 7 and disabled (both changes kept)", st.Rule.Times, st.Rule.IsEnabled())
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("Update ran f %d times, want 2 (once more after SetEnabled)", n)
		}
	})
	t.Run("Update of a rule removed meanwhile", func(t *testing.T) {
		e := NewEngine(EngineOptions{})
		g := gateCompile(e, "slow")
		mustAdd(t, e, dropRule("slow", Match{}))
		g.armed.Store(true)
		done := make(chan error, 1)
		go func() {
			_, err := e.Update("slow", func(r *Rule) error { r.Times = 7; return nil })
			done <- err
		}()
		g.hold(t, e, func() { <-done })
		if _, err := e.Remove("slow"); err != nil {
			t.Error(err)
		}
		close(g.release)
		if err := <-done; !errors.Is(err, ErrNotFound) {
			t.Errorf("Update = %v, want ErrNotFound", err)
		}
		if n := len(e.List()); n != 0 {
			t.Errorf("%d rules after Remove, want 0", n)
		}
	})
	t.Run("ActivateScenario", func(t *testing.T) {
		e := NewEngine(EngineOptions{})
		g := gateCompile(e, "slow")
		if err := e.SetScenarios(map[string]Scenario{"s": {Rules: []Rule{dropRule("slow", Match{Methods: []string{"allocate"}})}}}); err != nil {
			t.Fatal(err)
		}
		g.armed.Store(true)
		done := make(chan error, 1)
		go func() { _, err := e.ActivateScenario("s"); done <- err }()
		g.hold(t, e, func() { <-done })
		// The scenario changes under the activation: the new one is
		// activated.
		if err := e.SetScenarios(map[string]Scenario{"s": {Rules: []Rule{dropRule("slow", Match{Methods: []string{"binding"}})}}}); err != nil {
			t.Error(err)
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if v := e.Decide(fresh(pk.bind)); v.Rule != "slow" {
			t.Errorf("Binding got %+v, want the new scenario's rule slow to drop it", v)
		}
		if v := e.Decide(fresh(pk.alloc)); v.Rule != "" {
			t.Errorf("Allocate got %+v, want the old scenario's rule gone", v)
		}
	})
	t.Run("timed step passed meanwhile", func(t *testing.T) {
		clk := newFakeClock()
		e := NewEngine(EngineOptions{Clock: clk})
		g := gateCompile(e, "slow")
		sc := Scenario{Steps: []Step{
			{At: 0},
			{At: Duration(5 * time.Second), Rules: []Rule{dropRule("slow", Match{})}},
			{At: Duration(10 * time.Second), Rules: []Rule{dropRule("later", Match{Methods: []string{"binding"}})}},
		}}
		if err := e.SetScenarios(map[string]Scenario{"t": sc}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ActivateScenario("t"); err != nil {
			t.Fatal(err)
		}
		g.armed.Store(true)
		done := make(chan struct{})
		go func() { clk.Advance(5 * time.Second); close(done) }()
		g.hold(t, e, func() { <-done })
		clk.Advance(5 * time.Second) // step 2 is due before step 1 is in
		close(g.release)
		<-done
		if v := e.Decide(fresh(pk.bind)); v.Rule != "later" {
			t.Errorf("Binding got %+v, want step 2's rule later", v)
		}
		var steps []int
		for _, en := range e.Journal().Query(Query{}) {
			if en.Step != nil {
				steps = append(steps, en.Step.Index)
			}
		}
		if want := []int{0, 2}; !slices.Equal(steps, want) {
			t.Errorf("steps journaled %v, want %v (step 1 skipped, as a clock jump skips it)", steps, want)
		}
	})
}

// TestConcurrentChangesOfDifferentRules adds, updates and removes rules
// with patterns (some the same in every worker) from several goroutines at
// once, and checks the set they leave, and that identical patterns share
// one automaton.
func TestConcurrentChangesOfDifferentRules(t *testing.T) {
	e := NewEngine(EngineOptions{})
	const workers, rounds = 4, 24
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range rounds {
				id := fmt.Sprintf("w%d-%d", w, k)
				r := dropRule(id, Match{Username: "^(shared|common)-[a-z]+[0-9]{1,4}$"})
				r.Match.Attributes = []AttributeMatch{{Type: "SOFTWARE", Regex: fmt.Sprintf("worker%d-[a-z]+", w)}}
				if _, err := e.Add(r); err != nil {
					t.Error(err)
					return
				}
				if _, err := e.Update(id, func(r *Rule) error { r.Times = k + 1; return nil }); err != nil {
					t.Error(err)
					return
				}
				if k%3 == 2 {
					if _, err := e.Remove(fmt.Sprintf("w%d-%d", w, k-1)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()

	var want []string
	for w := range workers {
		for k := range rounds {
			if k%3 != 1 {
				want = append(want, fmt.Sprintf("w%d-%d", w, k))
			}
		}
	}
	slices.Sort(want)
	var got []string
	for _, st := range e.List() {
		got = append(got, st.Rule.ID)
		var k int
		if _, err := fmt.Sscanf(st.Rule.ID[len("wN-"):], "%d", &k); err != nil || st.Rule.Times != k+1 {
			t.Errorf("rule %s has times %d, want its update (%d)", st.Rule.ID, st.Rule.Times, k+1)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("rules %v, want %v", got, want)
	}

	s := e.snap.Load()
	shared := map[string]*compiledPattern{}
	for i := range s.rules {
		for _, c := range s.rules[i].m.conds {
			p := c.pattern
			if c.attr != nil {
				p = c.attr.regex
			}
			if p == nil {
				continue
			}
			if prev, ok := shared[p.expr]; ok && prev != p.shared {
				t.Errorf("pattern %q compiled into two automata", p.expr)
			}
			shared[p.expr] = p.shared
		}
	}
	if len(shared) != 1+workers {
		t.Errorf("%d distinct patterns, want %d", len(shared), 1+workers)
	}
}

// TestCompilePatternConcurrently compiles one new expression from several
// goroutines at once: they wait for one build instead of making their own.
func TestCompilePatternConcurrently(t *testing.T) {
	const expr = "^concurrent-(compile|build)[a-z]{2,8}[0-9]+$"
	var wg sync.WaitGroup
	got := make([]*Pattern, 8)
	for i := range got {
		wg.Go(func() {
			p, err := CompilePattern(expr)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = p
		})
	}
	wg.Wait()
	for _, p := range got[1:] {
		if p != nil && got[0] != nil && p.shared != got[0].shared {
			t.Fatalf("%q compiled into more than one automaton", expr)
		}
	}
}
