package main

import (
	"encoding/json"
	"strings"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// readRules reads the rules of `rules add` and `rules replace` from a file
// or stdin ("-") with config.ParseRules: every problem is reported at
// once, as config.Errors (exit 2).
func readRules(inv *invocation, src string) ([]faults.Rule, error) {
	data, name, err := inv.readInput(src)
	if err != nil {
		return nil, err
	}
	return config.ParseRules(data, name)
}

// readPatch takes a merge patch inline ("{...}"), from a file, or stdin.
func readPatch(inv *invocation, arg string) (json.RawMessage, error) {
	data := []byte(arg)
	name := "PATCH"
	if !strings.HasPrefix(strings.TrimSpace(arg), "{") {
		var err error
		if data, name, err = inv.readInput(arg); err != nil {
			return nil, err
		}
	}
	if !json.Valid(data) {
		return nil, inputErrorf("%s: not JSON", name)
	}
	return json.RawMessage(data), nil
}
