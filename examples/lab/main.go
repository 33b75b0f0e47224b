// Command lab prints the levels of stunfault's training lab (lab.toml) and
// how to run each one. The lab itself runs on stunfault's own command, from
// the repository root:
//
//	go run ./examples/lab                                      # the levels
//	go run . -config examples/lab/lab.toml -scenario level1    # serve level 1
//
// README.md beside it is the exercise sheet.
package main

import (
	_ "embed"
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

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

// run prints each level of lab.toml, in order, with the command that
// serves it.
func run(w io.Writer) error {
	cfg, err := config.Parse(labTOML, "examples/lab/lab.toml")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "stunfault lab: serve a level from the repository root, then follow README.md")
	for _, name := range levels(cfg) {
		fmt.Fprintf(w, "\n%s: %s\n  go run . -config examples/lab/lab.toml -scenario %s\n",
			name, cfg.Scenarios[name].Description, name)
	}
	return nil
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
