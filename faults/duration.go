package faults

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("150ms", "2s")
// in TOML and JSON. Negative durations are rejected when decoding.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in Go's duration notation.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string such as "150ms". It rejects
// negative values and bare numbers without a unit.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: expected a Go duration such as \"150ms\" or \"2s\"", text)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: must not be negative", text)
	}
	*d = Duration(v)
	return nil
}
