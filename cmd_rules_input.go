package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
)

// rulesForms says what `rules add` and `rules replace` read.
const rulesForms = `want [[rules]] tables (TOML), or JSON: a rule, an array of rules, {"rules": [...]}, or one of those per line`

// readRules reads the rules of `rules add` and `rules replace` from a file
// or stdin ("-"): TOML with only [[rules]] tables (checked with line
// numbers), or JSON: one rule, an array of rules, {"rules": [...]}, or a
// sequence of those (JSON lines). Every problem is reported at once, as
// config.Errors (exit 2), and so is input with no rules in it, or with
// anything besides rules (a whole config, say).
func readRules(inv *invocation, src string) ([]faults.Rule, error) {
	data, name, err := inv.readInput(src)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	var rules []faults.Rule
	var errs config.Errors
	switch {
	case len(trimmed) == 0:
		return nil, config.Errors{{File: name, Msg: "empty: no rules to load; " + rulesForms}}
	case isJSON(trimmed):
		rules, errs = readJSONRules(data, name)
	default:
		rules, errs = readTOMLRules(data, name)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(rules) == 0 {
		return nil, config.Errors{{File: name, Msg: "no rules in it; " + rulesForms}}
	}
	return rules, nil
}

// isJSON tells JSON from TOML: a valid JSON value, or input that starts
// with "{", or "[" and then "{" or "]" (TOML's "[table]" and "[[table]]"
// have a name there).
func isJSON(b []byte) bool {
	if b[0] == '{' || json.Valid(b) {
		return true
	}
	rest := bytes.TrimSpace(b[1:])
	return b[0] == '[' && (len(rest) == 0 || rest[0] == '{' || rest[0] == ']')
}

// readTOMLRules reads a TOML file that holds only [[rules]] tables.
func readTOMLRules(data []byte, name string) ([]faults.Rule, config.Errors) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err == nil {
		var others []string
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			if k != "rules" {
				others = append(others, tomlShape(k, raw[k]))
			}
		}
		switch {
		case len(others) > 0:
			return nil, config.Errors{{File: name, Msg: fmt.Sprintf("has %s, not only [[rules]]: "+
				"rules add and rules replace take [[rules]] tables alone (a whole config is served with stunfault -config %s)",
				strings.Join(others, ", "), name)}}
		case raw["rules"] == nil:
			return nil, nil
		}
	}
	// Parse again through config for the line numbers of every problem
	// (a syntax error included).
	cfg, err := config.Parse(data, name)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return nil, errs
		}
		return nil, config.Errors{{File: name, Msg: err.Error()}}
	}
	return cfg.Rules, nil
}

// tomlShape names a top-level TOML key as the file spells it.
func tomlShape(key string, v any) string {
	switch v.(type) {
	case map[string]any:
		return "[" + key + "]"
	case []map[string]any:
		return "[[" + key + "]]"
	}
	return key + " = ..."
}

// readJSONRules reads one JSON value or a sequence of them, each a rule,
// an array of rules or {"rules": [...]}, with a line number on each
// problem.
func readJSONRules(data []byte, name string) ([]faults.Rule, config.Errors) {
	var rules []faults.Rule
	var errs config.Errors
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		end := int(dec.InputOffset())
		if err != nil {
			// A syntax error: nothing after it can be read.
			return nil, append(errs, &config.Error{File: name, Line: lineAt(data, end), Msg: jsonMsg(err)})
		}
		start := end - len(raw)
		got, err := decodeJSONRules(raw)
		if err != nil {
			errs = append(errs, &config.Error{File: name, Line: lineAt(data, start), Msg: jsonMsg(err)})
			continue
		}
		rules = append(rules, got...)
	}
	return rules, errs
}

// decodeJSONRules decodes one JSON value of readJSONRules, refusing unknown
// fields: a field the CLI dropped would never reach the server.
func decodeJSONRules(raw json.RawMessage) ([]faults.Rule, error) {
	switch raw[0] {
	case '[':
		var rules []faults.Rule
		return rules, strictJSON(raw, &rules)
	case '{':
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil {
			return nil, err
		}
		if _, ok := keys["rules"]; !ok {
			var r faults.Rule
			return []faults.Rule{r}, strictJSON(raw, &r)
		}
		if len(keys) > 1 {
			others := slices.DeleteFunc(slices.Sorted(maps.Keys(keys)), func(k string) bool { return k == "rules" })
			return nil, fmt.Errorf("has %q besides \"rules\": give only {\"rules\": [...]}", others)
		}
		var set struct {
			Rules []faults.Rule `json:"rules"`
		}
		return set.Rules, strictJSON(raw, &set)
	}
	return nil, fmt.Errorf("want a rule object or an array of rules, got %.20s", raw)
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func jsonMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	// Skip the whitespace before the value, so its own line is named.
	for off < len(data) && (data[off] == ' ' || data[off] == '\t' || data[off] == '\n' || data[off] == '\r') {
		off++
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
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
