package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

var rulesCmd = &command{
	name:     "rules",
	synopsis: "list|get|add|update|remove|enable|disable|replace|clear [ARGS]",
	summary:  "change the rules of a running stunfault (rules from TOML or JSON)",
	doc: `  stunfault rules list [-label KEY=VALUE]... [-json]
  stunfault rules get ID [-json]
  stunfault rules add [FILE|-]         rules from a TOML ([[rules]]) or JSON file, or stdin
  stunfault rules update ID PATCH      PATCH: a JSON merge patch, inline, a FILE or - (stdin)
  stunfault rules remove ID... | -label KEY=VALUE...
  stunfault rules enable|disable ID...
  stunfault rules replace [FILE|-]     swap the whole rule set
  stunfault rules clear`,
	run: runRules,
}

// rulesArgs are the positional arguments each `rules` subcommand takes.
var rulesArgs = map[string]struct {
	lo, hi int // hi < 0: no limit
	want   string
}{
	"list":    {0, 0, "no arguments"},
	"clear":   {0, 0, "no arguments"},
	"get":     {1, 1, "one rule ID"},
	"enable":  {1, -1, "rule IDs"},
	"disable": {1, -1, "rule IDs"},
	"remove":  {0, -1, "rule IDs"},
	"add":     {0, 1, "at most one FILE"},
	"replace": {0, 1, "at most one FILE"},
	"update":  {2, 2, "ID and PATCH"},
}

// runRules is `stunfault rules SUBCOMMAND`.
func runRules(ctx context.Context, inv *invocation) error {
	args := inv.args
	fs := inv.flags()
	cf := fs.controlFlags()
	asJSON := fs.jsonFlag()
	labels := labelsFlag{}
	fs.Var(labels, "label", "only rules with this `KEY=VALUE` label (repeatable)")
	switch {
	case len(args) == 0:
		fs.printUsage(inv.stderr)
		return inv.usageErrorf("missing subcommand")
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help":
		fs.printUsage(inv.stdout)
		return flag.ErrHelp
	}
	sub := args[0]
	spec, ok := rulesArgs[sub]
	if !ok {
		return inv.usageErrorf("unknown subcommand %q", sub)
	}
	pos, err := fs.parse(args[1:], spec.lo, spec.hi, spec.want+" after "+sub)
	if err != nil {
		return err
	}
	if sub == "remove" && (len(pos) == 0) == (len(labels) == 0) {
		return inv.usageErrorf("want rule IDs or -label after remove, not both nor neither")
	}

	// Read the input before dialling.
	var rules []faults.Rule
	var patch json.RawMessage
	switch sub {
	case "add", "replace":
		src := "-"
		if len(pos) == 1 {
			src = pos[0]
		}
		rules, err = readRules(inv, src)
	case "update":
		patch, err = readPatch(inv, pos[1])
	}
	if err != nil {
		return err
	}
	return cf.call(ctx, func(c *control.Client) error {
		return rulesOp(ctx, c, inv.stdout, sub, pos, *asJSON, labels, rules, patch)
	})
}

// rulesOp sends the request of one checked `rules` subcommand and prints
// what the server did.
func rulesOp(ctx context.Context, c *control.Client, w io.Writer, sub string, pos []string, asJSON bool, labels labelsFlag, rules []faults.Rule, patch json.RawMessage) error {
	switch sub {
	case "list":
		sts, err := c.ListRulesByLabels(ctx, labels)
		return show(w, asJSON, sts, err, printRules)
	case "get":
		st, err := c.GetRule(ctx, pos[0])
		return show(w, asJSON, st, err, func(w io.Writer, st faults.RuleStatus) { printRules(w, []faults.RuleStatus{st}) })
	case "add":
		res, rev, err := c.AddRules(ctx, rules)
		if err != nil {
			return controlErr(err)
		}
		var did []string
		if len(res.Added) > 0 {
			did = append(did, "added "+strings.Join(res.Added, ", "))
		}
		if len(res.Replaced) > 0 {
			did = append(did, "replaced "+strings.Join(res.Replaced, ", "))
		}
		fmt.Fprintf(w, "%s (revision %d)\n", strings.Join(did, "; "), rev)
	case "update":
		got, rev, err := c.UpdateRule(ctx, pos[0], patch)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(w, "updated %s (revision %d)\n", got.ID, rev)
	case "remove", "enable", "disable":
		if sub == "remove" && len(labels) > 0 {
			n, rev, err := c.RemoveRulesByLabels(ctx, labels)
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(w, "removed %s (revision %d)\n", plural(n, "rule"), rev)
			return nil
		}
		f := map[string]func(context.Context, string) (uint64, error){"remove": c.RemoveRule, "enable": c.EnableRule, "disable": c.DisableRule}[sub]
		for _, id := range pos {
			rev, err := f(ctx, id)
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(w, "%s %s (revision %d)\n", strings.TrimSuffix(sub, "e")+"ed", id, rev)
		}
	case "replace":
		res, rev, err := c.ReplaceRules(ctx, rules)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(w, "replaced the rules (revision %d): added %s; removed %s; kept %s\n",
			rev, listOrNone(res.Added), listOrNone(res.Removed), listOrNone(res.Replaced))
	case "clear":
		n, rev, err := c.ClearRules(ctx)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(w, "removed %s (revision %d)\n", plural(n, "rule"), rev)
	}
	return nil
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// printRules writes a table of rules: TIMES is the cap on firings, FOR
// how long the rule lasts after it was added ("-": no limit).
func printRules(w io.Writer, sts []faults.RuleStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIO\tON\tMATCHED\tFIRED\tTIMES\tFOR\tLABELS\tACTION\tMATCH")
	for _, st := range sts {
		r := &st.Rule
		on := "yes"
		switch {
		case st.Expired:
			on = "expired"
		case !r.IsEnabled():
			on = "no"
		}
		times, lasts := "-", "-"
		if r.Times > 0 {
			times = strconv.Itoa(r.Times)
		}
		if r.For > 0 {
			lasts = r.For.String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Priority, on, st.Matched, st.Fired,
			times, lasts, labelsSummary(r.Labels), r.Action.String(), matchSummary(&r.Match))
	}
	_ = tw.Flush()
}

// labelsSummary is "k=v,k2=v2" in key order, or "-".
func labelsSummary(labels map[string]string) string {
	if len(labels) == 0 {
		return "-"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kv = append(kv, k+"="+labels[k])
	}
	return strings.Join(kv, ",")
}

func matchSummary(m *faults.Match) string {
	var parts []string
	add := func(name string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, name+"="+strings.Join(vs, ","))
		}
	}
	add("methods", m.Methods)
	add("classes", m.Classes)
	add("transports", m.Transports)
	add("sources", m.Sources)
	if m.Direction != "" {
		parts = append(parts, "direction="+m.Direction)
	}
	if m.Webhook != nil {
		parts = append(parts, "webhook="+cmpOr(m.Webhook.Name, "*"))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
