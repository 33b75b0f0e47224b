package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// queryFlags are the journal query flags of `journal` and `events`.
type queryFlags struct {
	q      faults.Query
	labels labelsFlag
}

func (qf *queryFlags) register(fs *flag.FlagSet) {
	qf.labels = labelsFlag{}
	fs.StringVar(&qf.q.Rule, "rule", "", "only this rule `ID`")
	fs.StringVar(&qf.q.Method, "method", "", "only this `method` (binding, allocate, ...)")
	fs.StringVar(&qf.q.Class, "class", "", "only this `class` (request, indication, success, error)")
	fs.StringVar(&qf.q.Transport, "transport", "", "only this `transport` (udp, tcp)")
	fs.StringVar(&qf.q.Direction, "direction", "", "only this `direction` (in, out)")
	fs.StringVar(&qf.q.Client, "client", "", "only this client `address`, address:port or CIDR prefix")
	fs.Var(qf.labels, "label", "only rules with this `KEY=VALUE` label (repeatable)")
}

func (qf *queryFlags) query() faults.Query {
	q := qf.q
	if len(qf.labels) > 0 {
		q.Labels = qf.labels
	}
	return q
}

// runJournal is `stunfault journal [query|count|verify] [flags]`.
func runJournal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := "query"
	if len(args) > 0 && (args[0] == "query" || args[0] == "count" || args[0] == "verify") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("journal "+sub, stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: stunfault journal [query|count|verify] [flags]\n\nquery (the default) lists the firings the journal holds, count counts them,\nverify -expect N checks that exactly N match and shows the near misses.")
		fs.PrintDefaults()
	}
	var cf controlFlags
	cf.register(fs)
	var qf queryFlags
	qf.register(fs)
	since := fs.Uint64("since", 0, "only entries after this `seq`")
	limit := fs.Int("limit", 0, "at most `N` entries, oldest first (query)")
	expect := fs.Int("expect", -1, "the expected count (verify)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fs.Usage()
		return inputErrorf("journal: unexpected argument %q", pos[0])
	}
	if sub == "verify" && *expect < 0 {
		return inputErrorf("journal verify: -expect N is required")
	}
	q := qf.query()
	q.SinceSeq, q.Limit = *since, *limit

	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	switch sub {
	case "count":
		n, err := c.CountJournal(ctx, q)
		if err != nil {
			return controlErr(err)
		}
		if *asJSON {
			return writeJSONTo(stdout, map[string]int{"count": n})
		}
		fmt.Fprintln(stdout, n)
	case "verify":
		res, err := c.VerifyJournal(ctx, q, *expect)
		if err != nil {
			return controlErr(err)
		}
		if *asJSON {
			if err := writeJSONTo(stdout, res); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "expected %d, got %d\n", res.Expected, res.Actual)
			for _, nm := range res.NearMisses {
				fmt.Fprintf(stdout, "near miss #%d %s %s %s/%s from %s: failed %v\n",
					nm.Entry.Seq, nm.Entry.Rule, nm.Entry.Action, nm.Entry.Method, nm.Entry.Class, nm.Entry.Client, nm.Failed)
			}
		}
		if !res.Match {
			return fmt.Errorf("journal verify: expected %d entries, got %d", res.Expected, res.Actual)
		}
	default:
		entries, err := c.QueryJournal(ctx, q)
		if err != nil {
			return controlErr(err)
		}
		if *asJSON {
			return writeJSONTo(stdout, entries)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tRULE\tACTION\tCODE\tMESSAGE\tTRANSPORT\tDIR\tCLIENT\tSIZE")
		for i := range entries {
			e := &entries[i]
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e.Seq, e.Time.Format(time.TimeOnly+".000"), e.Rule,
				e.Action, codeOrDash(e.Code), messageKind(e), e.Transport, e.Direction, e.Client, e.Size)
		}
		_ = tw.Flush()
	}
	return nil
}

func codeOrDash(code int) string {
	if code == 0 {
		return "-"
	}
	return fmt.Sprint(code)
}

func messageKind(e *faults.Entry) string {
	if e.Class == "" {
		return e.Method
	}
	return e.Method + "/" + e.Class
}
