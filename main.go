// Command stunfault is a local STUN/TURN server that fails on purpose,
// exactly when told to.
//
// Usage:
//
//	stunfault [COMMAND] [flags] [ARGS]
//
// The commands are serve (the default), check, rules, scenario, events,
// journal, stats, webhook, load, version and help: "stunfault help" lists
// them with their arguments, "stunfault help COMMAND" prints one's flags.
//
// With no arguments it serves the embedded default config: STUN and TURN on
// udp and tcp 127.0.0.1:3478 (user "user", password "pass") and the HTTP side
// on 127.0.0.1:8478, where the control socket (ws://127.0.0.1:8478/control)
// lets the other commands change its rules while it runs. Exit status: 0 on
// success, 2 on usage or config errors, 1 on runtime failures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// commands are stunfault's commands, in the order help lists them.
var commands = []*command{
	serveCmd, checkCmd, rulesCmd, scenarioCmd, eventsCmd, journalCmd, captureCmd, statsCmd, webhookCmd, loadCmd, clockCmd, allocationsCmd, versionCmd,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runIO(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "stunfault:", err)
	}
	os.Exit(exitCode(err))
}

// run is the whole command, reading stdin from os.Stdin.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO is the whole command, minus signal handling and os.Exit, so tests
// call it in-process. It returns when the command is done or ctx ends.
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	name, rest := "serve", args
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			printCommands(stdout)
			return nil
		case a != "" && a[0] != '-':
			name, rest = a, args[1:]
		}
	}
	if name == "help" {
		return runHelp(ctx, rest, stdin, stdout, stderr)
	}
	cmd := lookup(name)
	if cmd == nil {
		printCommands(stderr)
		return inputErrorf("unknown command %q", name)
	}
	return cmd.run(ctx, &invocation{cmd: cmd, args: rest, stdin: stdin, stdout: stdout, stderr: stderr})
}

// runHelp is `stunfault help [COMMAND]`: the command list, or a command's
// usage, on stdout.
func runHelp(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		printCommands(stdout)
		return nil
	case len(args) > 1:
		return inputErrorf("help: want at most one COMMAND, got %d arguments", len(args))
	}
	cmd := lookup(args[0])
	if cmd == nil {
		printCommands(stderr)
		return inputErrorf("help: unknown command %q", args[0])
	}
	err := cmd.run(ctx, &invocation{cmd: cmd, args: []string{"-h"}, stdin: stdin, stdout: stdout, stderr: stderr})
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// printCommands writes the command list.
func printCommands(w io.Writer) {
	fmt.Fprintln(w, "Usage: stunfault [COMMAND] [flags] [ARGS]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n      %s\n", c.usageLine(), c.summary)
	}
	fmt.Fprint(w, `  stunfault help [COMMAND]
      this list, or a command's usage and flags

With no COMMAND, stunfault serves. The commands that drive a running
stunfault take -control URL (default ws://127.0.0.1:8478/control) and
-token TOKEN (default $STUNFAULT_TOKEN).
Run "stunfault help COMMAND" or "stunfault COMMAND -h" for a command's flags.
`)
}
