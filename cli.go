package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server/control"
)

// This file is the scaffolding every command shares: its definition and
// help, its flags, the control socket, JSON output, and the errors that
// decide the exit status.

// command is one `stunfault NAME`.
type command struct {
	name     string
	synopsis string // what follows "stunfault NAME" in the usage line
	summary  string // one line for the command list
	doc      string // what -h prints between the usage line and the flags
	run      func(ctx context.Context, inv *invocation) error
}

// invocation is one run of a command: its arguments and where it reads and
// writes.
type invocation struct {
	cmd    *command
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageLine is "stunfault NAME SYNOPSIS".
func (c *command) usageLine() string {
	return strings.TrimSpace("stunfault " + c.name + " " + c.synopsis)
}

// flagSet is a command's flags. It never prints by itself: -h prints the
// command's usage to stdout (exit 0), and a bad flag comes back as an
// input error that main prints once (exit 2).
type flagSet struct {
	*flag.FlagSet
	inv *invocation
}

// flags returns a new flag set for the command.
func (inv *invocation) flags() *flagSet {
	fs := flag.NewFlagSet("stunfault "+inv.cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, inv: inv}
}

// printUsage writes the command's usage line, its doc and its flags.
func (fs *flagSet) printUsage(w io.Writer) {
	c := fs.inv.cmd
	fmt.Fprintf(w, "Usage: %s\n", c.usageLine())
	if c.doc != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.doc, "\n"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parse parses flags that may come before, between or after positional
// arguments ("rules get ID -json") and returns the positional ones. It
// refuses fewer than lo or more than hi of them (hi < 0: no limit), naming
// what was wanted.
func (fs *flagSet) parse(args []string, lo, hi int, want string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.inv.stdout)
				return nil, err
			}
			return nil, fs.inv.usageErrorf("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < lo || (hi >= 0 && len(pos) > hi) {
		if len(pos) > 0 && hi == 0 {
			return nil, fs.inv.usageErrorf("unexpected argument %q", pos[0])
		}
		return nil, fs.inv.usageErrorf("want %s, got %s", want, plural(len(pos), "argument"))
	}
	return pos, nil
}

// jsonFlag registers -json.
func (fs *flagSet) jsonFlag() *bool {
	return fs.Bool("json", false, "print JSON")
}

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

// usageErrorf is an input error in the command line, prefixed with the
// command's name and followed by where to find its usage.
func (inv *invocation) usageErrorf(format string, args ...any) error {
	return inputErrorf("%s: %s (see \"stunfault help %s\")", inv.cmd.name, fmt.Sprintf(format, args...), inv.cmd.name)
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

// loadConfig reads a config file; any failure (a missing file as much as a
// bad key) is the user's input to fix, so exit status 2.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, &inputError{msg: err.Error(), err: err}
	}
	return cfg, nil
}

// readInput reads a file, or stdin for "-", and returns its contents and
// the name to use in messages.
func (inv *invocation) readInput(src string) ([]byte, string, error) {
	if src == "-" {
		data, err := io.ReadAll(inv.stdin)
		if err != nil {
			return nil, "", fmt.Errorf("reading stdin: %w", err)
		}
		return data, "<stdin>", nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, "", &inputError{msg: err.Error(), err: err}
	}
	return data, src, nil
}

// controlFlags are the flags of every command that drives a running
// stunfault.
type controlFlags struct {
	url   string
	token string
}

// controlFlags registers -control and -token.
func (fs *flagSet) controlFlags() *controlFlags {
	cf := &controlFlags{}
	fs.StringVar(&cf.url, "control", control.DefaultURL, "control socket `URL`")
	fs.StringVar(&cf.token, "token", "", "control `TOKEN` (default $STUNFAULT_TOKEN)")
	return cf
}

// dial connects to the control socket: a malformed -control URL or a
// refused token or origin is the user's to fix (exit 2), an unreachable
// server a runtime failure (exit 1).
func (cf *controlFlags) dial(ctx context.Context) (*control.Client, error) {
	if u, err := url.Parse(cf.url); err != nil || u.Host == "" ||
		(u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
		return nil, inputErrorf("-control %q: want ws://HOST:PORT/control (or http://HOST:PORT)", cf.url)
	}
	token := cf.token
	if token == "" {
		token = os.Getenv("STUNFAULT_TOKEN") // read here, so that -h never prints it
	}
	c, err := control.Dial(ctx, cf.url, &control.DialOptions{Token: token})
	if err != nil {
		var ce *control.Error
		if errors.As(err, &ce) {
			msg := err.Error()
			if ce.Code == control.CodeUnauthorized {
				msg += "; pass the server's [http] token with -token TOKEN or set STUNFAULT_TOKEN"
			}
			return nil, &inputError{msg: msg, err: err}
		}
		return nil, fmt.Errorf("cannot reach stunfault at %s: %w", cf.url, err)
	}
	return c, nil
}

// call dials the control socket, runs f with the client, and closes it.
func (cf *controlFlags) call(ctx context.Context, f func(*control.Client) error) error {
	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// show prints the answer v of a control request: as JSON with -json, else
// with text. A failed request (err) is the server's refusal, see controlErr.
func show[T any](w io.Writer, asJSON bool, v T, err error, text func(io.Writer, T)) error {
	if err != nil {
		return controlErr(err)
	}
	if asJSON {
		return writeJSON(w, v)
	}
	text(w, v)
	return nil
}

// controlErr makes a server's refusal of a request (a bad rule, an unknown
// id) an input error, exit 2; anything else stays a runtime failure.
func controlErr(err error) error {
	var ce *control.Error
	if errors.As(err, &ce) && ce.Code != control.CodeInternal {
		msg := strings.TrimPrefix(err.Error(), "control: ")
		for _, d := range ce.Details[min(len(ce.Details), 1):] {
			msg += "\n  " + d.Field + ": " + d.Message
		}
		return &inputError{msg: msg, err: err}
	}
	return err
}

// labelsFlag collects -label KEY=VALUE flags.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return "" }

func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	l[k] = v
	return nil
}

// writeJSON writes v as indented JSON, the form of every -json output.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// plural is "1 rule", "2 rules", "0 entries".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "y"):
		noun = strings.TrimSuffix(noun, "y") + "ies"
	case strings.HasSuffix(noun, "s"):
		noun += "es"
	default:
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}
