package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/stunfault/stunfault/server/control"
)

var clockCmd = &command{
	name:     "clock",
	synopsis: "[-json] [advance DURATION]",
	summary:  "show the server's time, or move a manual clock on ([server] clock = \"manual\")",
	doc: `  stunfault clock                    the server's time, and whether its clock is manual
  stunfault clock advance DURATION   move a manual clock on ("30s", "1m30s"); returns once
                                     the timers due have run (rules with for expired, a
                                     timed scenario's next step, held webhook requests)
pion's own lifetimes (allocations, permissions, channels, nonces) stay on real time.`,
	run: runClock,
}

// runClock is `stunfault clock [advance DURATION]`.
func runClock(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	pos, err := fs.parse(inv.args, 0, 2, "nothing, or advance DURATION")
	if err != nil {
		return err
	}
	var by time.Duration
	switch {
	case len(pos) == 0:
	case pos[0] != "advance":
		return inv.usageErrorf("unknown subcommand %q (want advance DURATION)", pos[0])
	case len(pos) != 2:
		return inv.usageErrorf("want a DURATION after advance (\"30s\")")
	default:
		by, err = time.ParseDuration(pos[1])
		if err != nil || by < 0 {
			return inv.usageErrorf("advance %q: want a non-negative Go duration (\"30s\", \"1m30s\")", pos[1])
		}
	}
	return cf.call(ctx, func(c *control.Client) error {
		var res control.ClockResult
		var err error
		if len(pos) == 0 {
			res, err = c.Clock(ctx)
		} else {
			res, err = c.AdvanceClock(ctx, by)
		}
		return show(inv.stdout, *asJSON, res, err, printClock)
	})
}

// printClock writes the server's time and its kind of clock.
func printClock(w io.Writer, res control.ClockResult) {
	kind := "system clock"
	if res.Manual {
		kind = fmt.Sprintf("manual clock, %s pending", plural(res.Pending, "timer"))
	}
	fmt.Fprintf(w, "%s (%s)\n", res.Now.Format(time.RFC3339Nano), kind)
}
