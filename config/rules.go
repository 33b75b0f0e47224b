package config

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

	"github.com/stunfault/stunfault/faults"
)

// rulesForms says what ParseRules reads.
const rulesForms = `want [[rules]] tables (TOML), or JSON: a rule, an array of rules, {"rules": [...]}, or one of those per line`

// ParseRules reads rules as `stunfault rules add` and the dashboard take
// them: TOML with only [[rules]] tables (checked with line numbers), or
// JSON: one rule, an array of rules, {"rules": [...]}, or a sequence of
// those (JSON lines). name is what the messages call the input (a file
// name, "<stdin>"). Every problem is reported at once, as [Errors], and so
// is input with no rules in it, or with anything besides rules (a whole
// config, say). The rules are checked as a config file's are; the server
// that gets them checks them again against its own webhooks.
func ParseRules(data []byte, name string) ([]faults.Rule, error) {
	trimmed := bytes.TrimSpace(data)
	var rules []faults.Rule
	var errs Errors
	switch {
	case len(trimmed) == 0:
		return nil, Errors{{File: name, Msg: "empty: no rules to load; " + rulesForms}}
	case isJSON(trimmed):
		rules, errs = readJSONRules(data, name)
	default:
		rules, errs = readTOMLRules(data, name)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(rules) == 0 {
		return nil, Errors{{File: name, Msg: "no rules in it; " + rulesForms}}
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
func readTOMLRules(data []byte, name string) ([]faults.Rule, Errors) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err == nil {
		var others []string
		for _, k := range slices.Sorted(maps.Keys(raw)) {
			if k != "rules" {
				others = append(others, TableShape(k, raw[k]))
			}
		}
		switch {
		case len(others) > 0:
			return nil, Errors{{File: name, Msg: fmt.Sprintf("has %s, not only [[rules]]: "+
				"rules add and rules replace take [[rules]] tables alone (a whole config is served with stunfault -config %s)",
				strings.Join(others, ", "), name)}}
		case raw["rules"] == nil:
			return nil, nil
		}
	}
	// Parse again through config for the line numbers of every problem
	// (a syntax error included).
	cfg, err := Parse(data, name)
	if err != nil {
		var errs Errors
		if errors.As(err, &errs) {
			return nil, errs
		}
		return nil, Errors{{File: name, Msg: err.Error()}}
	}
	return cfg.Rules, nil
}

// TableShape names a top-level TOML key (decoded by BurntSushi/toml as v)
// as a file spells it: "[key]", "[[key]]" or "key = ...".
func TableShape(key string, v any) string {
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
func readJSONRules(data []byte, name string) ([]faults.Rule, Errors) {
	var rules []faults.Rule
	var errs Errors
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
			return nil, append(errs, &Error{File: name, Line: lineAt(data, end), Msg: jsonMsg(err)})
		}
		start := end - len(raw)
		got, err := decodeJSONRules(raw)
		if err != nil {
			errs = append(errs, &Error{File: name, Line: lineAt(data, start), Msg: jsonMsg(err)})
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
