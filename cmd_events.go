package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/stunfault/stunfault/server/control"
)

// runEvents is `stunfault events`: follow the decision stream until ctx
// ends (Ctrl-C), the server goes away, or -n events were printed.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("events", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault events [flags]\n\nFollows the rule firings as they happen, one line each (-json: one JSON object each).")
		fs.PrintDefaults()
	}
	var cf controlFlags
	cf.register(fs)
	var qf queryFlags
	qf.register(fs)
	since := fs.Int64("since", -1, "first replay the journal's entries after this `seq` (0: all it holds)")
	count := fs.Int("n", 0, "exit after `N` events (0: follow until interrupted)")
	asJSON := fs.Bool("json", false, "print JSON, one event per line")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return inputErrorf("events: unexpected argument %q", pos[0])
	}
	req := control.SubscribeRequest{Filter: qf.query()}
	if *since >= 0 {
		s := uint64(*since)
		req.SinceSeq = &s
	}

	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.Subscribe(ctx, req)
	if err != nil {
		return controlErr(err)
	}
	defer sub.Close()
	enc := json.NewEncoder(stdout)
	printed := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				if err := c.Err(); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
					return fmt.Errorf("events: %w", err)
				}
				return nil
			}
			if *asJSON {
				if err := enc.Encode(ev); err != nil {
					return err
				}
			} else if ev.Event == control.EventLost {
				fmt.Fprintf(stdout, "... %d events lost (the reader fell behind)\n", ev.Count)
			} else if ev.Entry != nil {
				e := ev.Entry
				fmt.Fprintf(stdout, "#%d %s %s %s %s %s %s %s %dB\n", e.Seq, e.Time.Format(time.TimeOnly+".000"), e.Rule,
					e.Action, codeOrDash(e.Code), messageKind(e), e.Transport+"/"+e.Direction, e.Client, e.Size)
			}
			if ev.Event == control.EventDecision {
				printed++
				if *count > 0 && printed >= *count {
					return nil
				}
			}
		}
	}
}
