package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// queryFlags are the journal query flags of `journal` and `events`.
type queryFlags struct {
	q      faults.Query
	labels labelsFlag
}

// queryFlags registers the journal query flags.
func (fs *flagSet) queryFlags() *queryFlags {
	qf := &queryFlags{labels: labelsFlag{}}
	fs.StringVar(&qf.q.Rule, "rule", "", "only this rule `ID`")
	fs.StringVar(&qf.q.Method, "method", "", "only this `method` (binding, allocate, ...)")
	fs.StringVar(&qf.q.Class, "class", "", "only this `class` (request, indication, success, error)")
	fs.StringVar(&qf.q.Transport, "transport", "", "only this `transport` (udp, tcp)")
	fs.StringVar(&qf.q.Direction, "direction", "", "only this `direction` (in, out)")
	fs.StringVar(&qf.q.Client, "client", "", "only this client `address`, address:port or CIDR prefix")
	fs.Var(qf.labels, "label", "only rules with this `KEY=VALUE` label (repeatable)")
	return qf
}

func (qf *queryFlags) query() faults.Query {
	q := qf.q
	if len(qf.labels) > 0 {
		q.Labels = qf.labels
	}
	return q
}

var journalCmd = &command{
	name:     "journal",
	synopsis: "[query|count|verify] [-rule ID] [-method M] [-label K=V] [-json] ...",
	summary:  "ask what fired: by rule, method, class, transport, client, labels",
	doc: `query (the default) lists the firings the journal holds, count counts them,
verify -expect N checks that exactly N match and shows the near misses.`,
	run: runJournal,
}

// runJournal is `stunfault journal [query|count|verify] [flags]`.
func runJournal(ctx context.Context, inv *invocation) error {
	sub, args := "query", inv.args
	if len(args) > 0 && (args[0] == "query" || args[0] == "count" || args[0] == "verify") {
		sub, args = args[0], args[1:]
	}
	fs := inv.flags()
	cf := fs.controlFlags()
	qf := fs.queryFlags()
	since := fs.Uint64("since", 0, "only entries after this `seq`")
	limit := fs.Int("limit", 0, "at most `N` entries, oldest first (query)")
	expect := fs.Int("expect", -1, "the expected count (verify)")
	asJSON := fs.jsonFlag()
	if _, err := fs.parse(args, 0, 0, "no arguments"); err != nil {
		return err
	}
	if sub == "verify" && *expect < 0 {
		return inv.usageErrorf("verify: -expect N is required")
	}
	q := qf.query()
	q.SinceSeq, q.Limit = *since, *limit

	return cf.call(ctx, func(c *control.Client) error {
		switch sub {
		case "count":
			n, err := c.CountJournal(ctx, q)
			return show(inv.stdout, *asJSON, journalCount{n}, err, func(w io.Writer, n journalCount) { fmt.Fprintln(w, n.Count) })
		case "verify":
			res, err := c.VerifyJournal(ctx, q, *expect)
			if err := show(inv.stdout, *asJSON, res, err, printVerify); err != nil {
				return err
			}
			if !res.Match {
				return fmt.Errorf("journal verify: expected %d entries, got %d", res.Expected, res.Actual)
			}
			return nil
		}
		entries, err := c.QueryJournal(ctx, q)
		return show(inv.stdout, *asJSON, entries, err, printEntries)
	})
}

// journalCount is what `journal count -json` prints.
type journalCount struct {
	Count int `json:"count"`
}

func printVerify(w io.Writer, res control.VerifyResult) {
	fmt.Fprintf(w, "expected %d, got %d\n", res.Expected, res.Actual)
	for _, nm := range res.NearMisses {
		fmt.Fprintf(w, "near miss #%d %s %s %s/%s from %s: failed %v\n",
			nm.Entry.Seq, nm.Entry.Rule, nm.Entry.Action, nm.Entry.Method, nm.Entry.Class, nm.Entry.Client, nm.Failed)
	}
}

func printEntries(w io.Writer, entries []faults.Entry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tRULE\tACTION\tCODE\tMESSAGE\tTRANSPORT\tDIR\tCLIENT\tSIZE")
	for i := range entries {
		e := &entries[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e.Seq, e.Time.Format(time.TimeOnly+".000"), e.Rule,
			e.Action, codeOrDash(e.Code), messageKind(e), e.Transport, e.Direction, e.Client, e.Size)
	}
	_ = tw.Flush()
}

func codeOrDash(code int) string {
	if code == 0 {
		return "-"
	}
	return fmt.Sprint(code)
}

func messageKind(e *faults.Entry) string {
	if st := e.Step; st != nil {
		return fmt.Sprintf("%s:step[%d]/%d", st.Scenario, st.Index, st.Steps)
	}
	if e.Class == "" {
		return e.Method
	}
	return e.Method + "/" + e.Class
}
