package server_test

import (
	"slices"
	"testing"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server"
)

// TestSameSeedSameDecisions: two servers with the same seed, the same rule
// and the same sequence of messages decide alike, and a different seed
// decides otherwise.
func TestSameSeedSameDecisions(t *testing.T) {
	t.Parallel()
	const n = 40
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			run := func(seed uint64) (outcomes string, journal []string) {
				srv := startServer(t, nil, server.WithSeed(seed))
				addRule(t, srv, faults.Rule{
					ID:          "coin",
					Probability: ptr(0.5),
					Match:       faults.Match{Methods: []string{"binding"}},
					Action:      faults.Action{Type: "error", Code: 403},
				})
				c := dialRaw(t, srv, transport, "")
				for range n {
					res := c.exchange(bindingRequest())
					switch code := errorCode(t, res); code {
					case 0:
						outcomes += "."
					case 403:
						outcomes += "x"
					default:
						t.Fatalf("unexpected error %d", code)
					}
				}
				for _, e := range srv.Faults().Journal().Query(faults.Query{}) {
					journal = append(journal, e.Rule+"/"+e.Action+"/"+e.Method)
				}
				return outcomes, journal
			}
			a, ja := run(42)
			b, jb := run(42)
			other, _ := run(7)
			t.Logf("seed 42: %s", a)
			t.Logf("seed 7:  %s", other)
			if a != b {
				t.Errorf("same seed, different outcomes:\n%s\n%s", a, b)
			}
			if !slices.Equal(ja, jb) {
				t.Errorf("same seed, different journals:\n%v\n%v", ja, jb)
			}
			if x := len(ja); x == 0 || x == n {
				t.Errorf("the rule fired %d times out of %d: probability 0.5 is not applied", x, n)
			}
			if a == other {
				t.Errorf("seeds 42 and 7 gave the same %d outcomes", n)
			}
		})
	}
}
