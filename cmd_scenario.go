package main

import (
	"context"
	"fmt"
	"io"
)

// runScenario is `stunfault scenario [NAME]`: list the scenarios, or
// activate one.
func runScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scenario", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault scenario [-control URL] [-token TOKEN] [NAME]\n\nWithout NAME, lists the scenarios (* marks the active one); with NAME, activates it.")
		fs.PrintDefaults()
	}
	var cf controlFlags
	cf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		fs.Usage()
		return inputErrorf("scenario: want at most one NAME, got %d arguments", len(pos))
	}
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(pos) == 1 {
		rev, err := c.ActivateScenario(ctx, pos[0])
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(stdout, "activated %s (revision %d)\n", pos[0], rev)
		return nil
	}
	sc, err := c.Scenarios(ctx)
	if err != nil {
		return controlErr(err)
	}
	if len(sc.Scenarios) == 0 {
		fmt.Fprintln(stdout, "no scenarios")
	}
	for _, name := range sc.Scenarios {
		mark := " "
		if name == sc.Active {
			mark = "*"
		}
		fmt.Fprintf(stdout, "%s %s\n", mark, name)
	}
	return nil
}
