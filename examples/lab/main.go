// Command lab lists the levels of stunfault's training lab (lab.toml) and
// checks a student's diagnosis of one. The lab itself runs on stunfault's
// own command, from the repository root:
//
//	go run ./examples/lab                                      # the levels, no answers
//	go run . -config examples/lab/lab.toml -scenario level1    # serve level 1
//	go run ./examples/lab -check 1 b                           # is b the right diagnosis?
//
// README.md beside it is the exercise sheet; its Answers section explains
// each level.
package main

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/stunfault/stunfault/config"
)

//go:embed lab.toml
var labTOML []byte

// Exit statuses: a wrong answer is not a usage error.
const (
	exitRight = 0
	exitWrong = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: with no arguments it lists the levels; with -check N
// LETTER it says whether LETTER answers level N's question. It returns the
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.Int("check", 0, "check an answer to level `N`'s question: -check N LETTER")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: go run ./examples/lab [-check N LETTER]\n\nWithout flags, lists the lab's levels. With -check, says whether LETTER\nanswers the question of level N on the sheet (examples/lab/README.md).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitRight
		}
		return exitUsage
	}
	cfg, err := config.Parse(labTOML, "examples/lab/lab.toml")
	if err != nil {
		fmt.Fprintln(stderr, "lab:", err)
		return exitUsage
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "check" })
	if !set {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "lab: unexpected arguments %q (want -check N LETTER, or nothing)\n", fs.Args())
			return exitUsage
		}
		list(stdout, levels(cfg))
		return exitRight
	}
	return checkAnswer(stdout, stderr, levels(cfg), *level, fs.Args())
}

// list prints the levels and how to serve, switch and check them; never
// what a level does.
func list(w io.Writer, names []string) {
	fmt.Fprintf(w, `stunfault lab: %d levels (%s).

From the repository root, serve a level:
  go run . -config examples/lab/lab.toml -scenario level1
switch a running server to another:
  go run . scenario level2
then follow the exercise sheet, examples/lab/README.md, and check your
diagnosis of level N:
  go run ./examples/lab -check N LETTER
`, len(names), strings.Join(names, ", "))
}

// checkAnswer says whether args (one letter) answers level n's question and
// why, and returns the exit status.
func checkAnswer(stdout, stderr io.Writer, names []string, n int, args []string) int {
	name := "level" + strconv.Itoa(n)
	q, ok := questions[name]
	if !ok || !slices.Contains(names, name) {
		fmt.Fprintf(stderr, "lab: -check %d: no such level (the lab has levels 1 to %d)\n", n, len(names))
		return exitUsage
	}
	if len(args) != 1 {
		fmt.Fprintf(stderr, "lab: -check %d wants one answer, a letter from %s, got %d arguments\n", n, q.letters(), len(args))
		return exitUsage
	}
	letter := strings.ToLower(strings.TrimSuffix(args[0], ")"))
	why, ok := q.feedback[letter]
	if !ok {
		fmt.Fprintf(stderr, "lab: -check %d: %q is not one of the answers %s\n", n, args[0], q.letters())
		return exitUsage
	}
	if letter == q.right {
		fmt.Fprintf(stdout, "level %d, %s: right. %s\n", n, letter, why)
		return exitRight
	}
	fmt.Fprintf(stdout, "level %d, %s: wrong. %s\n", n, letter, why)
	return exitWrong
}

// levels returns the config's scenario names in level order: level1,
// level2, ..., level10.
func levels(cfg config.Config) []string {
	names := make([]string, 0, len(cfg.Scenarios))
	for name := range cfg.Scenarios {
		names = append(names, name)
	}
	num := func(s string) int { n, _ := strconv.Atoi(strings.TrimPrefix(s, "level")); return n }
	slices.SortFunc(names, func(a, b string) int { return num(a) - num(b) })
	return names
}
