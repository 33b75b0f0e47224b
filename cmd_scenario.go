package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stunfault/stunfault/server/control"
)

var scenarioCmd = &command{
	name:     "scenario",
	synopsis: "[-json] [NAME]",
	summary:  "list the scenarios, or activate one (the whole rule set at once)",
	doc: `Without NAME, lists the scenarios (* marks the active one; a running timed
scenario shows its active step and the time to the next); with NAME, activates it
(a timed scenario starts at step 0).`,
	run: runScenario,
}

// runScenario is `stunfault scenario [NAME]`.
func runScenario(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	pos, err := fs.parse(inv.args, 0, 1, "at most one NAME")
	if err != nil {
		return err
	}
	return cf.call(ctx, func(c *control.Client) error {
		if len(pos) == 1 {
			rev, err := c.ActivateScenario(ctx, pos[0])
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(inv.stdout, "activated %s (revision %d)\n", pos[0], rev)
			return nil
		}
		sc, err := c.Scenarios(ctx)
		return show(inv.stdout, *asJSON, sc, err, printScenarios)
	})
}

// printScenarios lists the scenarios, * marking the active one.
func printScenarios(w io.Writer, sc control.ScenariosResult) {
	if len(sc.Scenarios) == 0 {
		fmt.Fprintln(w, "no scenarios")
	}
	for _, name := range sc.Scenarios {
		mark := " "
		if name == sc.Active {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %s", mark, name)
		if st := sc.Step; st != nil && st.Scenario == name {
			fmt.Fprintf(w, "  step %d of %d", st.Index, st.Steps)
			if st.Cycle > 0 {
				fmt.Fprintf(w, " (repeat %d)", st.Cycle)
			}
			if st.Next.IsZero() {
				fmt.Fprint(w, ", the last")
			} else {
				fmt.Fprintf(w, ", next in %s", st.NextIn)
			}
		}
		fmt.Fprintln(w)
	}
}
