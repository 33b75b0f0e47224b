//go:build race

package server

// raceEnabled reports whether the race detector is on: it adds
// allocations of its own, so allocation counts are not checked then.
const raceEnabled = true
