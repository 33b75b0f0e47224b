package control

import (
	"maps"
	"slices"
	"testing"
)

// Ops (what hello advertises, and docs/control.md's order) and the table
// the handler dispatches on must list the same ops.
func TestOpsListsEveryOpServed(t *testing.T) {
	served := slices.Sorted(maps.Keys(ops))
	listed := slices.Sorted(slices.Values(Ops()))
	if !slices.Equal(served, listed) {
		t.Fatalf("ops served %v, Ops() lists %v", served, listed)
	}
}
