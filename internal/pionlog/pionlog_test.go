package pionlog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	"github.com/stunfault/stunfault/internal/pionlog"
)

// TestLevels checks what each of pion's levels writes, for handlers at
// each level: a record with pion's scope at and above the handler's level,
// nothing below it.
func TestLevels(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  []string // the messages written, in order
	}{
		{pionlog.LevelTrace, []string{"trace 1", "trace", "debug 2", "debug", "info 3", "warn 4", "error 5"}},
		{slog.LevelDebug, []string{"debug 2", "debug", "info 3", "warn 4", "error 5"}},
		{slog.LevelInfo, []string{"info 3", "warn 4", "error 5"}},
		{slog.LevelError, []string{"error 5"}},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			l := pionlog.Factory{Log: log}.NewLogger("turn")
			l.Tracef("trace %d", 1)
			l.Trace("trace")
			l.Debugf("debug %d", 2)
			l.Debug("debug")
			l.Infof("info %d", 3)
			l.Warnf("warn %d", 4)
			l.Errorf("error %d", 5)
			var got []string
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var rec struct{ Msg, Scope string }
				if err := dec.Decode(&rec); err != nil {
					t.Fatal(err)
				}
				if rec.Scope != "turn" {
					t.Errorf("%q: scope %q, want turn", rec.Msg, rec.Scope)
				}
				got = append(got, rec.Msg)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("written %q, want %q", got, tt.want)
			}
		})
	}
}
