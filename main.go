// Command stunfault is a local STUN/TURN server that fails on purpose,
// exactly when told to.
//
// Usage:
//
//	stunfault [serve] [-config FILE] [-scenario NAME] [-log-level LEVEL] [-log-format text|json]
//	stunfault check FILE
//	stunfault version
//	stunfault webhook [-name NAME | -url URL] [-c N] [-n N | -d DURATION] ...
//	stunfault rules list|get|add|update|remove|enable|disable|replace|clear ...
//	stunfault scenario [NAME]
//	stunfault events [-json]
//	stunfault journal [query|count|verify] ...
//	stunfault stats
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "stunfault:", err)
	}
	os.Exit(exitCode(err))
}

// run is the whole command, minus signal handling and os.Exit, so tests call
// it in-process. It returns when the command is done or ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "version":
		return runVersion(rest, stdout, stderr)
	case "webhook":
		return runWebhook(ctx, rest, stdout, stderr)
	case "rules":
		return runRules(ctx, rest, stdout, stderr)
	case "scenario":
		return runScenario(ctx, rest, stdout, stderr)
	case "events":
		return runEvents(ctx, rest, stdout, stderr)
	case "journal":
		return runJournal(ctx, rest, stdout, stderr)
	case "stats":
		return runStats(ctx, rest, stdout, stderr)
	case "help":
		printUsage(stdout)
		return nil
	}
	printUsage(stderr)
	return inputErrorf("unknown command %q", cmd)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  stunfault [serve] [-config FILE] [-log-level LEVEL] [-log-format text|json]
                     serve STUN/TURN and the HTTP side (the default command)
  stunfault check FILE
                     validate a config file and print every error with its line
  stunfault version  print the versions of stunfault and pion
  stunfault webhook [-name NAME | -url URL] [-c N] [-n N] [-d DURATION] [-rate R] [-body S | -body-file FILE] [-H "Name: value"]
                     send load to a webhook and print status counts and latencies
  stunfault rules list|get|add|update|remove|enable|disable|replace|clear [ARGS]
                     change the rules of a running stunfault (rules from TOML or JSON)
  stunfault scenario [NAME]
                     list the scenarios, or activate one
  stunfault events [-json] [-rule ID] [-since SEQ] [-n N]
                     follow the rule firings as they happen
  stunfault journal [query|count|verify] [-rule ID] [-method M] [-json] ...
                     query the journal of firings
  stunfault stats [-json]
                     print the server's counters
The commands that drive a running stunfault take -control URL (default
ws://127.0.0.1:8478/control) and -token TOKEN.

Run "stunfault COMMAND -h" for a command's flags.
`)
}
