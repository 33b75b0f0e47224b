package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/stunfault/stunfault/config"
)

var checkCmd = &command{
	name:     "check",
	synopsis: "FILE|-",
	summary:  "validate a config file (- reads stdin) and print every error with its line",
	doc: `Validates a stunfault config file, or stdin for -, and prints "FILE: OK" or
every error found, one a line with its line number and key path.`,
	run: runCheck,
}

// runCheck is `stunfault check FILE`.
func runCheck(_ context.Context, inv *invocation) error {
	pos, err := inv.flags().parse(inv.args, 1, 1, "exactly one FILE (or - for stdin)")
	if err != nil {
		return err
	}
	data, name, err := inv.readInput(pos[0])
	if err == nil {
		_, err = config.Parse(data, name)
	} else {
		name = pos[0]
	}
	if err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			errs = config.Errors{{Msg: err.Error()}}
		}
		for _, e := range errs {
			fmt.Fprintln(inv.stdout, e)
		}
		return &inputError{msg: name + ": " + plural(len(errs), "error"), err: err}
	}
	fmt.Fprintf(inv.stdout, "%s: OK\n", name)
	return nil
}
