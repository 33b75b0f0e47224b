package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/stunfault/stunfault/internal/loadgen"
)

var loadCmd = &command{
	name:     "load",
	synopsis: "[-mode binding|allocate|channeldata] [-t udp|tcp|tls] [-s SOCKETS] [-w WINDOW] [-n COUNT] [-d DURATION] [-u USER -p PASS] [ADDRESS]",
	summary:  "send bounded STUN/TURN load to a server and print throughput, loss, errors and latency",
	doc: `Sends STUN/TURN load to a server (stunfault, coturn, any other) from
SOCKETS sockets, each keeping WINDOW transactions outstanding, until COUNT
transactions were sent or DURATION has passed (at least one of them is
required), and validates every answer: its method and transaction id, the
client's own XOR-MAPPED-ADDRESS, an echo's bytes.

Modes: binding (Binding requests), allocate (whole Allocate cycles with a
401 challenge and a Refresh with lifetime 0, one fresh socket each), and
channeldata (datagrams through one allocation per socket to an echo peer and
back; -peer names one, else a UDP echo peer is started on loopback).

ADDRESS is an IP literal and a port (default 127.0.0.1:3478); it must be
loopback unless -allow-remote is given. The last line of the output is the
result as one JSON object (all of it with -json).`,
	run: runLoad,
}

// runLoad is `stunfault load`.
func runLoad(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	var l loadgen.STUN
	fs.StringVar(&l.Mode, "mode", loadgen.ModeBinding, "binding, allocate or channeldata")
	fs.StringVar(&l.Transport, "t", "udp", "transport: udp, tcp or tls")
	fs.IntVar(&l.Sockets, "s", 1, fmt.Sprintf("client sockets (1 to %d)", loadgen.MaxSockets))
	fs.IntVar(&l.Window, "w", 1, fmt.Sprintf("transactions outstanding per socket (1 to %d)", loadgen.MaxWindow))
	fs.IntVar(&l.Count, "n", 0, fmt.Sprintf("transactions in all (at most %d; 0 = until -d)", loadgen.MaxCount))
	fs.DurationVar(&l.Duration, "d", 0, fmt.Sprintf("send for this long (at most %v; 0 = until -n)", loadgen.MaxDuration))
	fs.DurationVar(&l.Timeout, "timeout", time.Second, "an answer later than this counts as lost")
	fs.StringVar(&l.Username, "u", "", "TURN username (allocate, channeldata)")
	fs.StringVar(&l.Password, "p", "", "TURN password")
	fs.StringVar(&l.Peer, "peer", "", "channeldata: the echo peer's IP and port (default: one started on loopback)")
	fs.IntVar(&l.Size, "size", 100, "channeldata: payload bytes (16 to 1200)")
	fs.BoolVar(&l.AllowRemote, "allow-remote", false, "allow a target or peer that is not a loopback address")
	asJSON := fs.jsonFlag()
	pos, err := fs.parse(inv.args, 0, 1, "at most one ADDRESS")
	if err != nil {
		return err
	}
	l.Target = "127.0.0.1:3478"
	if len(pos) == 1 {
		l.Target = pos[0]
	}
	// 0 means "the default" to loadgen, but on the command line it is a
	// value the user typed.
	if l.Sockets < 1 || l.Window < 1 {
		return inv.usageErrorf("-s and -w: want at least 1, got %d and %d", l.Sockets, l.Window)
	}
	if err := l.Validate(); err != nil {
		return inv.usageErrorf("%v", err)
	}
	res, err := loadgen.RunSTUN(ctx, l)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if !*asJSON {
		writeLoadSummary(inv.stdout, l, res)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(inv.stdout, string(line))
	if res.Answered == 0 {
		return fmt.Errorf("load: no answer to any of %s", plural(res.Sent, "transaction"))
	}
	return nil
}

// writeLoadSummary prints a load's result for a person.
func writeLoadSummary(w io.Writer, l loadgen.STUN, r loadgen.STUNResult) {
	fmt.Fprintf(w, "%s over %s to %s: %s x window %d, %v\n", r.Mode, r.Transport, l.Target, plural(r.Sockets, "socket"), r.Window, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  sent %d, answered %d, lost %d, invalid %d: %.0f answers/s\n", r.Sent, r.Answered, r.Lost, r.Invalid, r.Rate())
	if len(r.Errors) > 0 {
		codes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		fmt.Fprint(w, "  errors:")
		for _, c := range codes {
			fmt.Fprintf(w, " %s: %d", c, r.Errors[c])
		}
		fmt.Fprintln(w)
	}
	p := r.Latency
	fmt.Fprintf(w, "  latency p50 %v, p90 %v, p99 %v, max %v\n", p.P50.Round(time.Microsecond), p.P90.Round(time.Microsecond), p.P99.Round(time.Microsecond), p.Max.Round(time.Microsecond))
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  failure: %s\n", f)
	}
}
