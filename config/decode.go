package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// decoder copies the generic tree the TOML parser returns
// (map[string]any, []any, string, int64, float64, bool, time.Time) into a
// Config, following the toml tags.
//
// Why not let the TOML package decode into the struct: it stops at the first
// error, names the key without array indexes ("rules.match.methods", not
// "rules[1].match.methods[0]") and matches keys case-insensitively. Decoding
// here reports every wrong type and unknown key with its full path, and
// gives the merge semantics directly: a struct decoded into keeps the keys
// the file leaves out, while slices and maps are built anew.
type decoder struct {
	errs []*Error
	// failed holds the paths whose value could not be decoded, so that
	// validation does not report the same key again.
	failed []string
	// webhook is what each [webhooks.NAME] starts from.
	webhook Webhook
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[faults.Duration]()
	webhookType         = reflect.TypeFor[Webhook]()
)

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Field: path, Msg: fmt.Sprintf(format, args...)})
	d.failed = append(d.failed, path)
}

func (d *decoder) typeError(path, want string, data any) {
	d.fail(path, "expected %s, got %s", want, describe(data))
}

// decode stores data into rv, which must be settable.
func (d *decoder) decode(path string, data any, rv reflect.Value) {
	if rv.Kind() == reflect.Pointer {
		nv := reflect.New(rv.Type().Elem())
		d.decode(path, data, nv.Elem())
		rv.Set(nv)
		return
	}
	if reflect.PointerTo(rv.Type()).Implements(textUnmarshalerType) {
		s, ok := data.(string)
		if !ok {
			want := "a string"
			if rv.Type() == durationType {
				want = `a duration string such as "150ms"`
			}
			d.typeError(path, want, data)
			return
		}
		if err := rv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.fail(path, "%v", err)
		}
		return
	}
	switch rv.Kind() {
	case reflect.Struct:
		d.decodeStruct(path, data, rv)
	case reflect.Slice:
		var items []any
		switch v := data.(type) {
		case []any:
			items = v
		case []map[string]any:
			for _, m := range v {
				items = append(items, m)
			}
		default:
			d.typeError(path, "an array", data)
			return
		}
		s := reflect.MakeSlice(rv.Type(), len(items), len(items))
		for i, item := range items {
			d.decode(indexPath(path, i), item, s.Index(i))
		}
		rv.Set(s)
	case reflect.Map:
		m, ok := data.(map[string]any)
		if !ok {
			d.typeError(path, "a table", data)
			return
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		et := rv.Type().Elem()
		for _, k := range sortedMapKeys(m) {
			ev := reflect.New(et).Elem()
			if et == webhookType {
				ev.Set(reflect.ValueOf(d.webhook))
			}
			d.decode(joinPath(path, k), m[k], ev)
			out.SetMapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()), ev)
		}
		rv.Set(out)
	case reflect.String:
		s, ok := data.(string)
		if !ok {
			d.typeError(path, "a string", data)
			return
		}
		rv.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := data.(int64)
		if !ok {
			d.typeError(path, "an integer", data)
			return
		}
		if rv.OverflowInt(n) {
			d.fail(path, "%d is out of range", n)
			return
		}
		rv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := data.(int64)
		if !ok {
			d.typeError(path, "a non-negative integer", data)
			return
		}
		if n < 0 || rv.OverflowUint(uint64(n)) {
			d.fail(path, "%d is out of range (want a non-negative integer)", n)
			return
		}
		rv.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch n := data.(type) {
		case float64:
			rv.SetFloat(n)
		case int64:
			rv.SetFloat(float64(n))
		default:
			d.typeError(path, "a number", data)
		}
	case reflect.Bool:
		b, ok := data.(bool)
		if !ok {
			d.typeError(path, "a boolean (true or false)", data)
			return
		}
		rv.SetBool(b)
	default:
		// A field type this decoder does not know: a programmer error in
		// the Config or Rule types, caught by the tests.
		panic(fmt.Sprintf("config: cannot decode into %s at %s", rv.Type(), path))
	}
}

// decodeStruct sets the fields of rv named by the keys of data, leaving the
// others as they are.
func (d *decoder) decodeStruct(path string, data any, rv reflect.Value) {
	m, ok := data.(map[string]any)
	if !ok {
		d.typeError(path, "a table", data)
		return
	}
	fields := tomlFields(rv.Type())
	for _, k := range sortedMapKeys(m) {
		i, ok := fields[k]
		if !ok {
			d.errs = append(d.errs, &Error{
				Field: joinPath(path, k),
				Msg:   fmt.Sprintf("unknown key %q (want one of %s)", k, strings.Join(fieldNames(rv.Type()), ", ")),
			})
			continue
		}
		d.decode(joinPath(path, k), m[k], rv.Field(i))
	}
}

// tomlFields maps the TOML names of t's fields to their indexes.
func tomlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := tomlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

// fieldNames lists the TOML names of t's fields in declaration order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name := tomlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

func tomlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// describe names the TOML type of a decoded value, with the value when short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return "string " + strconv.Quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case time.Time:
		return "datetime " + v.Format(time.RFC3339)
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}
