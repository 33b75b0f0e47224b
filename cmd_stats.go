package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stunfault/stunfault/server/control"
)

var statsCmd = &command{
	name:     "stats",
	synopsis: "[-json]",
	summary:  "print the server's counters: listeners, allocations, webhook load, rules",
	doc: `Prints the counters of a running stunfault: its revision and scenario, the
journal, listeners, allocations, each webhook's requests in flight and
pending, machine states, and each rule's matched and fired counts.`,
	run: runStats,
}

// runStats is `stunfault stats`.
func runStats(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return err
	}
	return cf.call(ctx, func(c *control.Client) error {
		st, err := c.Stats(ctx)
		return show(inv.stdout, *asJSON, st, err, printStats)
	})
}

// printStats writes the counters as text.
func printStats(w io.Writer, st control.Stats) {
	fmt.Fprintf(w, "revision %d", st.Revision)
	if st.Scenario != "" {
		fmt.Fprintf(w, ", scenario %s", st.Scenario)
	}
	fmt.Fprintf(w, "\njournal: %s, last seq %d\n", plural(st.Journal.Len, "entry"), st.Journal.LastSeq)
	for _, l := range st.Listeners {
		fmt.Fprintf(w, "listening: %s %s", l.Transport, l.Address)
		if len(l.Loops) > 0 {
			n := make([]string, len(l.Loops))
			for i, lp := range l.Loops {
				n[i] = strconv.FormatUint(lp.Datagrams, 10)
			}
			fmt.Fprintf(w, ", %s (datagrams read: %s)", plural(len(l.Loops), "read loop"), strings.Join(n, ", "))
		}
		fmt.Fprintln(w)
	}
	if st.Allocations != nil {
		fmt.Fprintf(w, "allocations: %d\n", *st.Allocations)
	}
	if ic := st.Intercept; ic != nil {
		fmt.Fprintf(w, "delays: %d pending (%d bytes), %d passed at once (budget spent); panics recovered: %d\n",
			ic.DelaysPending, ic.DelayedBytes, ic.DelayOverflows, ic.Panics)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Webhooks)) {
		h := st.Webhooks[name]
		fmt.Fprintf(w, "webhook %s: %d in flight, %d pending\n", name, h.Inflight, h.Pending)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Machines)) {
		fmt.Fprintf(w, "machine %s: %s\n", name, st.Machines[name])
	}
	if len(st.Rules) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tON\tMATCHED\tFIRED\tLET THROUGH")
		for _, r := range st.Rules {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", r.ID, yesNo(r.Enabled), r.Matched, r.Fired, r.LetThrough)
		}
		_ = tw.Flush()
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
