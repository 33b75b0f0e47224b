package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// runStats is `stunfault stats`: the server's counters.
func runStats(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("stats", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault stats [-control URL] [-token TOKEN] [-json]")
		fs.PrintDefaults()
	}
	var cf controlFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return inputErrorf("stats: unexpected argument %q", pos[0])
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return controlErr(err)
	}
	if *asJSON {
		return writeJSONTo(stdout, st)
	}
	fmt.Fprintf(stdout, "revision %d", st.Revision)
	if st.Scenario != "" {
		fmt.Fprintf(stdout, ", scenario %s", st.Scenario)
	}
	fmt.Fprintf(stdout, "\njournal: %d entries, last seq %d\n", st.Journal.Len, st.Journal.LastSeq)
	for _, l := range st.Listeners {
		fmt.Fprintf(stdout, "listening: %s %s\n", l.Transport, l.Address)
	}
	if st.Allocations != nil {
		fmt.Fprintf(stdout, "allocations: %d\n", *st.Allocations)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Webhooks)) {
		w := st.Webhooks[name]
		fmt.Fprintf(stdout, "webhook %s: %d in flight, %d pending\n", name, w.Inflight, w.Pending)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Machines)) {
		fmt.Fprintf(stdout, "machine %s: %s\n", name, st.Machines[name])
	}
	if len(st.Rules) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tON\tMATCHED\tFIRED\tLET THROUGH")
		for _, r := range st.Rules {
			on := "yes"
			if !r.Enabled {
				on = "no"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", r.ID, on, r.Matched, r.Fired, r.LetThrough)
		}
		_ = tw.Flush()
	}
	return nil
}
