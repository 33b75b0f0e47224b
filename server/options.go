package server

import (
	"log/slog"
	"net"

	"github.com/stunfault/stunfault/faults"
)

// Option sets a Go-only knob of a Server: values that TOML cannot express.
// Everything that is data lives in config.Config.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	clock   faults.Clock
	seed    uint64
	seedSet bool
	// Caller-supplied sockets (sockets.go).
	packetConns []net.PacketConn
	listeners   []net.Listener
}

// WithLogger sends the server's logs, pion's included, to l. The default is
// silent (slog.DiscardHandler).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithClock makes the server read time from c instead of the wall clock
// (and overrides [server].clock): delays, rule lifetimes (for), rate limits,
// webhook latency and windows, timed scenarios and REST credential expiry.
// It does not reach pion's internals (nonce age, allocation, permission and
// channel lifetimes). A *faults.ManualClock given here is also the one the
// clock.advance control op moves.
func WithClock(c faults.Clock) Option {
	return func(o *options) { o.clock = c }
}

// WithSeed seeds the server's random source, overriding [server].seed.
func WithSeed(seed uint64) Option {
	return func(o *options) { o.seed, o.seedSet = seed, true }
}
