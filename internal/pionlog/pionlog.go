// Package pionlog routes pion's leveled loggers into log/slog: the one
// adapter the server (pion/turn) and the ICE gatherer (pion/webrtc) share.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// LevelTrace is below slog.LevelDebug: pion's Trace logs.
const LevelTrace = slog.LevelDebug - 4

// Factory is a logging.LoggerFactory that logs to Log, with one "scope"
// attribute per pion component.
type Factory struct{ Log *slog.Logger }

// NewLogger returns the logger of one pion component. Whether pion's Trace
// and Debug logs are on is read from Log's handler here, once: pion calls
// them for every packet, and a cached flag costs a load where asking slog
// costs about 100 instructions (callgrind, 2026-12-01). Info and above ask
// the handler at each call, as slog does.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	log := f.Log.With("scope", scope)
	ctx := context.Background()
	return logger{log: log, trace: log.Enabled(ctx, LevelTrace), debug: log.Enabled(ctx, slog.LevelDebug)}
}

type logger struct {
	log          *slog.Logger
	trace, debug bool // pion's per-packet levels, as the handler had them
}

// logf formats only when the level is enabled, so pion's per-packet Debug
// and Trace calls cost nothing when they are off.
func (l logger) logf(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, fmt.Sprintf(format, args...))
	}
}

func (l logger) write(level slog.Level, msg string) {
	ctx := context.Background()
	if l.log.Enabled(ctx, level) {
		l.log.Log(ctx, level, msg)
	}
}

func (l logger) Trace(msg string) {
	if l.trace {
		l.write(LevelTrace, msg)
	}
}

func (l logger) Tracef(format string, args ...any) {
	if l.trace {
		l.logf(LevelTrace, format, args...)
	}
}

func (l logger) Debug(msg string) {
	if l.debug {
		l.write(slog.LevelDebug, msg)
	}
}

func (l logger) Debugf(format string, args ...any) {
	if l.debug {
		l.logf(slog.LevelDebug, format, args...)
	}
}

func (l logger) Info(msg string)                   { l.write(slog.LevelInfo, msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l logger) Warn(msg string)                   { l.write(slog.LevelWarn, msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l logger) Error(msg string)                  { l.write(slog.LevelError, msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
