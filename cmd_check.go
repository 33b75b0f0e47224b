package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/stunfault/stunfault/config"
)

// runCheck is `stunfault check FILE`: it prints "FILE: OK" or every error
// found, one per line with its line number where the key has one.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault check FILE\n\nValidates a stunfault config file and prints every error with its line.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return inputErrorf("check: want exactly one FILE, got %d arguments", fs.NArg())
	}
	path := fs.Arg(0)
	if _, err := config.Load(path); err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(stdout, e)
			}
			return inputErrorf("%s: %d errors", path, len(errs))
		}
		fmt.Fprintln(stdout, err)
		return &inputError{msg: path + ": 1 error", err: err}
	}
	fmt.Fprintf(stdout, "%s: OK\n", path)
	return nil
}
