package main

import (
	"strings"
	"testing"
)

// A callgrind file as --dump-instr=yes writes it, cut down: absolute and
// relative positions, a call whose inclusive cost must not count, and a
// second function.
const callgrindSample = `# callgrind format
version: 1
positions: instr line
events: Ir
summary: 100

ob=(1) /tmp/bs
fl=(1) a.go
fn=(1) main.a
0x1000 10 5
+4 +1 5
+4 * 7
calls=1 0x2000 20
+3 +1 1000
+5 +1 2
fn=(2) main.b
0x2000 20 3
* * 4
-8 -1 1
`

func TestInstructionCounts(t *testing.T) {
	got, err := instructionCounts(strings.NewReader(callgrindSample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]uint64{0x1000: 5, 0x1004: 5, 0x1008: 7, 0x1010: 2, 0x2000: 7, 0x1ff8: 1}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for a, c := range want {
		if got[a] != c {
			t.Errorf("address %#x: %d, want %d (all: %v)", a, got[a], c, got)
		}
	}
}

func TestInstructionCountsErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no instr positions", "positions: line\nevents: Ir\n", "want positions: instr line"},
		{"cost before positions", "events: Ir\n0x10 1 1\n", "line 2: a cost line before the positions"},
		{"bad address", "positions: instr line\n0xzz 1 1\n", `line 2: address "0xzz"`},
		{"bad count", "positions: instr line\n0x10 1 x\n", `line 2: count "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instructionCounts(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestHotLines(t *testing.T) {
	once := map[uint64]uint64{0x1000: 100, 0x1004: 100, 0x1040: 100, 0x2000: 5}
	twice := map[uint64]uint64{0x1000: 200, 0x1004: 200, 0x1040: 195, 0x2000: 10, 0x3000: 1000}
	// n = 100: 0x1000 and 0x1004 (one line) ran 100 more times, 0x1040 95
	// (0.95 per Binding, hot), 0x2000 5 (cold), 0x3000 1000 (hot).
	if got := hotLines(once, twice, 100); got != 3 {
		t.Errorf("hotLines = %d, want 3", got)
	}
}

func TestI1Misses(t *testing.T) {
	stderr := []byte("==1== I   refs:      29,728,074\n==1== I1  misses:       661,545\n==1== LLi misses:        14,118\n")
	got, err := i1Misses(stderr)
	if err != nil || got != 661545 {
		t.Errorf("i1Misses = %v, %v; want 661545", got, err)
	}
	if _, err := i1Misses([]byte("==1== nothing\n")); err == nil {
		t.Error("no summary: no error")
	}
}
