package faults

import (
	"errors"
	"maps"
	"slices"
)

// ErrNoScenarios is returned by LoadScenarios when it is given none.
var ErrNoScenarios = errors.New("faults: no scenarios to load")

// ScenarioLoad is what LoadScenarios did: the scenarios it added and those
// it replaced (same name), sorted.
type ScenarioLoad struct {
	// Revision is the engine's revision after the load.
	Revision uint64   `json:"-"`
	Added    []string `json:"added"`
	Replaced []string `json:"replaced"`
}

// LoadScenarios adds scenarios to the ones ActivateScenario can activate,
// replacing those of the same names, as one change: every scenario is
// validated first (as SetScenarios does), and if any is invalid nothing
// changes. The active rules, and a timed scenario already running, do not
// change: activate a loaded scenario to use it.
func (e *Engine) LoadScenarios(scenarios map[string]Scenario) (ScenarioLoad, error) {
	if len(scenarios) == 0 {
		return ScenarioLoad{}, ErrNoScenarios
	}
	loaded, err := e.validScenarios(scenarios) // before the lock, as in Add
	if err != nil {
		return ScenarioLoad{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	merged := maps.Clone(e.scenarios)
	if merged == nil {
		merged = map[string]Scenario{}
	}
	res := ScenarioLoad{Added: []string{}, Replaced: []string{}}
	for _, name := range slices.Sorted(maps.Keys(loaded)) {
		if _, ok := merged[name]; ok {
			res.Replaced = append(res.Replaced, name)
		} else {
			res.Added = append(res.Added, name)
		}
		merged[name] = loaded[name]
	}
	e.setScenarios(merged)
	s := e.snap.Load()
	res.Revision = e.commit(slices.Clone(s.rules), s.scenario)
	return res, nil
}
