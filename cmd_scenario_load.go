package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// loadScenarios is `stunfault scenario load FILE`.
func loadScenarios(ctx context.Context, inv *invocation, cf *controlFlags, src string, asJSON bool) error {
	scenarios, ignored, err := readScenarios(inv, src)
	if err != nil {
		return err
	}
	if len(ignored) > 0 {
		fmt.Fprintf(inv.stderr, "scenario load: ignoring %s (only [scenarios] is loaded)\n", strings.Join(ignored, ", "))
	}
	return cf.call(ctx, func(c *control.Client) error {
		rev, res, err := c.LoadScenarios(ctx, scenarios)
		if err != nil {
			return controlErr(err)
		}
		if asJSON {
			return writeJSON(inv.stdout, res)
		}
		fmt.Fprintf(inv.stdout, "loaded %s", plural(len(res.Added)+len(res.Replaced), "scenario"))
		if len(res.Added) > 0 {
			fmt.Fprintf(inv.stdout, "; added %s", strings.Join(res.Added, ", "))
		}
		if len(res.Replaced) > 0 {
			fmt.Fprintf(inv.stdout, "; replaced %s", strings.Join(res.Replaced, ", "))
		}
		fmt.Fprintf(inv.stdout, " (revision %d); activate one with: stunfault scenario NAME\n", rev)
		return nil
	})
}

// readScenarios reads the [scenarios.NAME] tables of a config file (or
// stdin), checked with line numbers as `stunfault check` does, and names the
// other top-level tables it holds. A file with no scenarios is refused,
// naming what it has instead.
func readScenarios(inv *invocation, src string) (map[string]faults.Scenario, []string, error) {
	data, name, err := inv.readInput(src)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Parse(data, name)
	if err != nil {
		return nil, nil, err
	}
	var others []string
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err == nil {
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			if k != "scenarios" {
				others = append(others, config.TableShape(k, raw[k]))
			}
		}
	}
	if len(cfg.Scenarios) == 0 {
		found := "nothing"
		if len(others) > 0 {
			found = strings.Join(others, ", ")
		}
		return nil, nil, config.Errors{{File: name, Msg: "no [scenarios.NAME] tables to load (it has " + found + ")"}}
	}
	return cfg.Scenarios, others, nil
}
