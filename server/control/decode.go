package control

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// decodeStrict decodes b into v, rejecting unknown fields; prefix is put
// before the field names of errors. Errors are bad_request with the field's
// path as the request spells it ("rule.match.methods").
func decodeStrict(b []byte, v any, prefix string) *Error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := joinField(prefix, jsonPath(te.Field))
		return &Error{Code: CodeBadRequest, Field: field,
			Message: fmt.Sprintf("%s: want %s, got %s", field, jsonKind(te.Type), te.Value)}
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if name, ok := strings.CutPrefix(msg, "unknown field "); ok {
		name, _ = strconv.Unquote(name)
		// encoding/json names the field but not where it is: find it.
		path := name
		var doc any
		if json.Unmarshal(b, &doc) == nil {
			if p, ok := findUnknown(doc, reflect.TypeOf(v), ""); ok {
				path = p
			}
		}
		field := clipString(joinField(prefix, path))
		return &Error{Code: CodeBadRequest, Field: field, Message: "unknown field " + strconv.Quote(field)}
	}
	return &Error{Code: CodeBadRequest, Field: prefix, Message: msg}
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// jsonPath drops the Go names of embedded structs from an
// UnmarshalTypeError's Field ("WebhookSettings.latency" -> "latency"):
// every JSON name of the protocol is lower case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	parts = slices.DeleteFunc(parts, func(p string) bool { return p != "" && p[0] >= 'A' && p[0] <= 'Z' })
	return strings.Join(parts, ".")
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonKind names what a JSON user must send for a Go type.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

// findUnknown walks doc (decoded JSON) along the Go type t and returns the
// path of the first object key that t has no field for.
func findUnknown(doc any, t reflect.Type, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "", false
	}
	switch x := doc.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := jsonFields(t)
			for _, k := range slices.Sorted(maps.Keys(x)) {
				ft, ok := fields[strings.ToLower(k)] // encoding/json folds case
				if !ok {
					return joinField(path, k), true
				}
				if p, ok := findUnknown(x[k], ft, joinField(path, k)); ok {
					return p, true
				}
			}
		case reflect.Map:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if p, ok := findUnknown(x[k], t.Elem(), joinField(path, k)); ok {
					return p, true
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range x {
				if p, ok := findUnknown(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); ok {
					return p, true
				}
			}
		}
	}
	return "", false
}

// jsonFields maps the lower-cased JSON names of a struct's fields (those of
// embedded structs included) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				maps.Copy(out, jsonFields(et))
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[strings.ToLower(name)] = f.Type
	}
	return out
}
