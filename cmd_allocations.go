package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/stunfault/stunfault/server/control"
)

var allocationsCmd = &command{
	name:     "allocations",
	synopsis: "[list|expire] [-json] [-client ADDR:PORT | -username NAME | -all]",
	summary:  "list the live TURN allocations, or expire some as if their lifetime had run out",
	doc: `  stunfault allocations [list]       5-tuple, transport, username, relayed address,
                                     lifetime left, permissions, channels
  stunfault allocations expire -client ADDR:PORT | -username NAME | -all
                                     end them now: the client's next Refresh gets 437,
                                     its relayed data stops, a new Allocate succeeds`,
	run: runAllocations,
}

// runAllocations is `stunfault allocations [list|expire]`.
func runAllocations(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	var sel control.AllocationSelector
	fs.StringVar(&sel.Client, "client", "", "expire: the client's `ADDR:PORT`, as list shows it")
	fs.StringVar(&sel.Username, "username", "", "expire: every allocation of the user `NAME`")
	fs.BoolVar(&sel.All, "all", false, "expire: every allocation")
	pos, err := fs.parse(inv.args, 0, 1, "list or expire")
	if err != nil {
		return err
	}
	sub := "list"
	if len(pos) == 1 {
		sub = pos[0]
	}
	switch sub {
	case "list":
		if sel != (control.AllocationSelector{}) {
			return inv.usageErrorf("-client, -username and -all are for expire")
		}
	case "expire":
		n := 0
		for _, set := range []bool{sel.Client != "", sel.Username != "", sel.All} {
			if set {
				n++
			}
		}
		if n != 1 {
			return inv.usageErrorf("expire wants exactly one of -client ADDR:PORT, -username NAME or -all")
		}
	default:
		return inv.usageErrorf("unknown subcommand %q (want list or expire)", sub)
	}
	return cf.call(ctx, func(c *control.Client) error {
		var list []control.Allocation
		var err error
		if sub == "list" {
			list, err = c.Allocations(ctx)
		} else {
			list, err = c.ExpireAllocations(ctx, sel)
		}
		return show(inv.stdout, *asJSON, control.AllocationsResult{Allocations: list}, err, func(w io.Writer, res control.AllocationsResult) {
			if sub == "expire" {
				fmt.Fprintf(w, "expired %s\n", plural(len(res.Allocations), "allocation"))
			}
			printAllocations(w, res.Allocations)
		})
	})
}

// printAllocations writes one line per allocation.
func printAllocations(w io.Writer, list []control.Allocation) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no allocations")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSERVER\tTRANSPORT\tUSERNAME\tRELAY\tLIFETIME LEFT\tPERMISSIONS\tCHANNELS")
	for _, a := range list {
		var perms, chans []string
		for _, p := range a.Permissions {
			perms = append(perms, fmt.Sprintf("%s (%s)", p.Peer, p.LifetimeLeft.D().Round(1e9)))
		}
		for _, ch := range a.Channels {
			chans = append(chans, fmt.Sprintf("%#x %s", ch.Number, ch.Peer))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Client, a.Server, a.Transport, a.Username, a.Relay,
			a.LifetimeLeft.D().Round(1e9), orDash(strings.Join(perms, ", ")), orDash(strings.Join(chans, ", ")))
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
