package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/stunfault/stunfault/config"
)

// inputError is a mistake in the command line or in a config file: exit
// status 2.
type inputError struct {
	msg string
	err error
}

func (e *inputError) Error() string { return e.msg }

func (e *inputError) Unwrap() error { return e.err }

func inputErrorf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps run's error to the process exit status: 0 on success (and
// -h), 2 on usage or config errors, 1 on runtime failures.
func exitCode(err error) int {
	var ue *inputError
	var ce *config.Error
	var ces config.Errors
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), errors.As(err, &ce), errors.As(err, &ces):
		return 2
	}
	return 1
}

// newFlagSet returns a flag set for one subcommand that reports errors
// instead of exiting and writes its usage to stderr.
func newFlagSet(name string, stderr interface{ Write([]byte) (int, error) }) *flag.FlagSet {
	fs := flag.NewFlagSet("stunfault "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &inputError{msg: err.Error()}
	}
	return nil
}

// loadConfig reads a config file; any failure (a missing file as much as a
// bad key) is the user's input to fix, so exit status 2.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, &inputError{msg: err.Error(), err: err}
	}
	return cfg, nil
}
