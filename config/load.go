package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
)

//go:embed default.toml
var defaultTOML []byte

// defaultConfig parses default.toml once. The embedded file is part of the
// program, so an error in it is a bug: the tests parse it too.
var defaultConfig = sync.OnceValue(func() Config {
	c, errs := parse(defaultTOML, "default.toml", Config{}, Webhook{})
	if len(errs) > 0 {
		panic("config: the embedded default.toml is invalid: " + errs.Error())
	}
	return c
})

// Default returns the built-in configuration (default.toml, embedded in the
// binary): loopback listeners on 127.0.0.1:3478 (UDP and TCP), the HTTP side
// on 127.0.0.1:8478, user "user" with password "pass", the "servicenow"
// webhook and no rules. Each call returns a fresh copy that the caller may
// change freely.
func Default() Config { return defaultConfig().Clone() }

// Load reads the TOML file at path over [Default]; see [Parse]. An error
// reading the file is returned as it is (wrapped); problems in its content
// are [Errors].
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse reads the TOML document data over [Default] and validates the
// result. name labels errors (a file name; "<input>" when empty).
//
// Plain tables ([server], [relay], [auth], [http]) merge key by key: a key
// given replaces that key's default, the others keep theirs. Arrays of tables
// and maps ([[listen]], [[users]], [[rules]], [webhooks], [scenarios])
// replace the default entirely when present. Each [webhooks.NAME] starts
// from the default servicenow webhook's values for the keys it leaves out.
//
// The error, when not nil, is of type [Errors] and holds every problem found,
// in file order: a TOML syntax error alone (as one *[Error] with its line),
// or else every wrong type, unknown key and invalid value. The Config is then
// the zero value.
func Parse(data []byte, name string) (Config, error) {
	base := Default()
	c, errs := parse(data, name, base, base.Webhooks["servicenow"])
	if len(errs) > 0 {
		return Config{}, errs
	}
	return c, nil
}

// parse decodes data over base and validates it. webhook is what every
// [webhooks.NAME] table starts from.
func parse(data []byte, name string, base Config, webhook Webhook) (Config, Errors) {
	if name == "" {
		name = "<input>"
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return Config{}, Errors{syntaxError(name, err)}
	}
	lines := scanKeyLines(string(data))

	d := decoder{webhook: webhook}
	c := base
	d.decode("", raw, reflect.ValueOf(&c).Elem())
	errs := Errors(d.errs)
	verrs, near := c.validate()
	for _, e := range verrs {
		if !slices.ContainsFunc(d.failed, func(p string) bool { return under(e.Field, p) }) {
			errs = append(errs, e)
		}
	}
	for _, e := range errs {
		e.File = name
		e.Line = lines.line(e.Field)
		if _, ok := lines[e.Field]; !ok && near[e] != "" {
			if n, ok := lines[near[e]]; ok {
				e.Line = n
			}
		}
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return a.Line - b.Line })
	return c, errs
}

// under reports whether path is p or inside it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p) && (path[len(p)] == '.' || path[len(p)] == '[')
}

// syntaxError turns the TOML parser's error into an *Error with its line.
func syntaxError(name string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Position.Line, Msg: "invalid TOML: " + pe.Message}
	}
	return &Error{File: name, Msg: "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
}
