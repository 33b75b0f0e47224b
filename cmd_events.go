package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

var eventsCmd = &command{
	name:     "events",
	synopsis: "[-json] [-follow] [-rule ID] [-since SEQ] [-n N] ...",
	summary:  "follow the rule firings as they happen",
	doc: `Follows the rule firings as they happen, one line each (-json: one JSON
object each), until interrupted, -n events were printed, or the server goes
away. With -follow it reconnects when the server goes away (for up to 30s
each time) and resumes after the last event it printed; a restarted server
starts its sequence numbers again, so from a restarted one it prints every
event the new server's journal holds.`,
	run: runEvents,
}

// Reconnecting with -follow: the first retry after followFirstRetry,
// doubling up to followMaxRetry, giving up once followGiveUp has passed
// without a connection.
const (
	followFirstRetry = 50 * time.Millisecond
	followMaxRetry   = time.Second
	followGiveUp     = 30 * time.Second
)

// runEvents is `stunfault events`.
func runEvents(ctx context.Context, inv *invocation) error {
	fs := inv.flags()
	cf := fs.controlFlags()
	qf := fs.queryFlags()
	since := fs.Int64("since", -1, "first replay the journal's entries after this `seq` (0: all it holds)")
	count := fs.Int("n", 0, "exit after `N` events (0: follow until interrupted)")
	asJSON := fs.jsonFlag()
	follow := fs.Bool("follow", false, "reconnect when the server goes away, and resume")
	if _, err := fs.parse(inv.args, 0, 0, "no arguments"); err != nil {
		return err
	}
	s := &eventStream{inv: inv, cf: cf, filter: control.SubscribeRequest{Filter: qf.query()}, count: *count, json: *asJSON}
	if *since >= 0 {
		seq := uint64(*since)
		s.since = &seq
	}
	err := s.session(ctx)
	var ie *inputError
	for *follow && ctx.Err() == nil && !s.done() && !errors.As(err, &ie) && !errors.Is(err, errGaveUp) {
		fmt.Fprintf(inv.stderr, "events: %v; reconnecting\n", err)
		err = s.reconnect(ctx)
	}
	if ctx.Err() != nil || s.done() {
		return nil
	}
	return err
}

// errGaveUp ends `events -follow` when the server stayed away.
var errGaveUp = fmt.Errorf("events: gave up reconnecting after %v", followGiveUp)

// eventStream is the state of `events` across connections.
type eventStream struct {
	inv     *invocation
	cf      *controlFlags
	filter  control.SubscribeRequest
	count   int  // stop after this many decisions (0: never)
	json    bool // print JSON lines
	printed int

	since     *uint64   // subscribe after this seq (nil: only new events)
	lastTime  time.Time // of the entry with seq *since, once one was printed
	seed      uint64    // of the server last connected to
	connected bool      // a session has reached a server before
	reached   bool      // the last session reached the server
}

func (s *eventStream) done() bool { return s.count > 0 && s.printed >= s.count }

// reconnect runs sessions, backing off between failed dials, until one
// reached the server and ended (its error is returned), ctx ends, or
// followGiveUp passes without a connection (errGaveUp).
func (s *eventStream) reconnect(ctx context.Context) error {
	wait := followFirstRetry
	deadline := time.Now().Add(followGiveUp)
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		s.reached = false
		err := s.session(ctx)
		if s.reached || ctx.Err() != nil || s.done() {
			return err
		}
		var ie *inputError
		if errors.As(err, &ie) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %w", errGaveUp, err)
		}
		wait = min(2*wait, followMaxRetry)
	}
}

// restarted tells whether the server c reached is another one than the
// last session's (a restarted stunfault has another seed, unless the
// config fixes it, and a journal whose entry at the last seq printed is
// not the one printed, or not there yet).
func (s *eventStream) restarted(ctx context.Context, c *control.Client, hello control.Hello) (bool, error) {
	if s.since == nil || hello.Seed != s.seed {
		return s.since != nil, nil
	}
	if *s.since == 0 {
		return false, nil
	}
	entries, err := c.QueryJournal(ctx, faults.Query{SinceSeq: *s.since - 1, Limit: 1})
	if err != nil {
		return false, err
	}
	switch {
	case len(entries) == 0: // the journal has not reached the last seq printed
		return true, nil
	case entries[0].Seq != *s.since, s.lastTime.IsZero():
		// Evicted from the journal's ring, or nothing printed to compare
		// with: assume the same server.
		return false, nil
	}
	return !entries[0].Time.Equal(s.lastTime), nil
}

// session connects once and prints events until the connection ends, ctx
// ends or enough were printed.
func (s *eventStream) session(ctx context.Context) error {
	c, err := s.cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	hello, err := c.Hello(ctx)
	if err != nil {
		return controlErr(err)
	}
	if s.connected {
		// A reconnection: the same server resumes after the last event
		// printed; a restarted one starts its sequence numbers again.
		restarted, err := s.restarted(ctx, c, hello)
		if err != nil {
			return controlErr(err)
		}
		if restarted {
			fmt.Fprintln(s.inv.stderr, "events: the server restarted; replaying its journal from the start")
			zero := uint64(0)
			s.since = &zero
		}
		fmt.Fprintf(s.inv.stderr, "events: reconnected to %s\n", s.cf.url)
	}
	s.connected, s.reached, s.seed = true, true, hello.Seed
	req := s.filter
	req.SinceSeq = s.since
	sub, err := c.Subscribe(ctx, req)
	if err != nil {
		return controlErr(err)
	}
	defer sub.Close()
	if s.since == nil {
		// From now on, resume after the last event seen, or from the
		// start of the journal of a server that fired none yet.
		last := sub.Result.LastSeq
		s.since = &last
	}
	enc := json.NewEncoder(s.inv.stdout)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				if err := c.Err(); err != nil {
					return fmt.Errorf("events: %w", err)
				}
				return errors.New("events: the server closed the connection")
			}
			if s.json {
				if err := enc.Encode(ev); err != nil {
					return err
				}
			} else if ev.Event == control.EventLost {
				fmt.Fprintf(s.inv.stdout, "... %d events lost (the reader fell behind)\n", ev.Count)
			} else if ev.Entry != nil {
				e := ev.Entry
				fmt.Fprintf(s.inv.stdout, "#%d %s %s %s %s %s %s %s %dB\n", e.Seq, e.Time.Format(time.TimeOnly+".000"), e.Rule,
					e.Action, codeOrDash(e.Code), messageKind(e), e.Transport+"/"+e.Direction, e.Client, e.Size)
			}
			if ev.Entry != nil {
				seq := ev.Entry.Seq
				s.since, s.lastTime = &seq, ev.Entry.Time
			}
			if ev.Event == control.EventDecision {
				s.printed++
				if s.done() {
					return nil
				}
			}
		}
	}
}
