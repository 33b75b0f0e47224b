package main

import (
	"context"
	"fmt"
	"io"

	"github.com/stunfault/stunfault/server/control"
)

var scenarioCmd = &command{
	name:     "scenario",
	synopsis: "[-json] [NAME | load FILE]",
	summary:  "list the scenarios, activate one (the whole rule set at once), or load more",
	doc: `Without NAME, lists the scenarios (* marks the active one; a running timed
scenario shows its active step and the time to the next); with NAME, activates it
(a timed scenario starts at step 0).

"scenario load FILE" adds the [scenarios.NAME] tables of a config file (- for
stdin) to the running server's, replacing those of the same names, as one
change: the file is checked whole first (with its lines), and on any error
nothing is loaded. Other tables in the file are ignored, and named. Loading
does not activate anything.`,
	run: runScenario,
}

// runScenario is `stunfault scenario [NAME]`.
func runScenario(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	pos, err := fs.parse(inv.args, 0, 2, "NAME, or load FILE")
	if err != nil {
		return err
	}
	if len(pos) == 2 && pos[0] != "load" || len(pos) == 1 && pos[0] == "load" {
		return inv.usageErrorf("want NAME, or load FILE")
	}
	if len(pos) == 2 {
		return loadScenarios(ctx, inv, cf, pos[1], *asJSON)
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
