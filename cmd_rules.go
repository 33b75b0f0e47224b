package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// controlFlags are the flags every command that drives a running stunfault
// shares.
type controlFlags struct {
	url   string
	token string
}

func (cf *controlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&cf.url, "control", control.DefaultURL, "control socket `URL`")
	fs.StringVar(&cf.token, "token", os.Getenv("STUNFAULT_TOKEN"), "control `token` (default $STUNFAULT_TOKEN)")
}

// dial connects to the control socket: an unreachable server is a runtime
// failure (exit 1), a refused token or origin the user's to fix (exit 2).
func (cf *controlFlags) dial(ctx context.Context) (*control.Client, error) {
	c, err := control.Dial(ctx, cf.url, &control.DialOptions{Token: cf.token})
	if err != nil {
		var ce *control.Error
		if errors.As(err, &ce) {
			return nil, &inputError{msg: err.Error(), err: err}
		}
		return nil, fmt.Errorf("cannot reach stunfault at %s: %w", cf.url, err)
	}
	return c, nil
}

// controlErr makes a server's refusal of a request (a bad rule, an unknown
// id) an input error, exit 2; anything else stays a runtime failure.
func controlErr(err error) error {
	var ce *control.Error
	if errors.As(err, &ce) && ce.Code != control.CodeInternal {
		msg := strings.TrimPrefix(err.Error(), "control: ")
		for _, d := range ce.Details[min(len(ce.Details), 1):] {
			msg += "\n  " + d.Field + ": " + d.Message
		}
		return &inputError{msg: msg, err: err}
	}
	return err
}

// parseInterspersed parses flags that may come after positional arguments
// ("rules get ID -json") and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// labelsFlag collects -label KEY=VALUE flags.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return "" }

func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	l[k] = v
	return nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

const rulesUsage = `Usage:
  stunfault rules list [-label KEY=VALUE]... [-json]
  stunfault rules get ID [-json]
  stunfault rules add [FILE|-]         rules from a TOML ([[rules]]) or JSON file, or stdin
  stunfault rules update ID PATCH      PATCH: a JSON merge patch, inline, a FILE or - (stdin)
  stunfault rules remove ID... | -label KEY=VALUE...
  stunfault rules enable|disable ID...
  stunfault rules replace [FILE|-]     swap the whole rule set
  stunfault rules clear
Every subcommand takes -control URL (default ` + control.DefaultURL + `) and -token TOKEN.
`

// runRules is `stunfault rules SUBCOMMAND`.
func runRules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, rulesUsage)
		if len(args) == 0 {
			return inputErrorf("rules: missing subcommand")
		}
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("rules "+sub, stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rulesUsage) }
	var cf controlFlags
	cf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	labels := labelsFlag{}
	fs.Var(labels, "label", "only rules with this `KEY=VALUE` label (repeatable)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	want := func(lo, hi int, what string) error {
		if len(pos) < lo || (hi >= 0 && len(pos) > hi) {
			return inputErrorf("rules %s: want %s, got %d arguments", sub, what, len(pos))
		}
		return nil
	}

	// Check the arguments and read the input before dialling.
	var rules []faults.Rule
	var patch json.RawMessage
	switch sub {
	case "list", "clear":
		err = want(0, 0, "no arguments")
	case "get":
		err = want(1, 1, "one rule ID")
	case "enable", "disable":
		err = want(1, -1, "rule IDs")
	case "remove":
		if len(labels) == 0 {
			err = want(1, -1, "rule IDs or -label")
		} else {
			err = want(0, 0, "rule IDs or -label, not both")
		}
	case "add", "replace":
		if err = want(0, 1, "at most one FILE"); err == nil {
			src := "-"
			if len(pos) == 1 {
				src = pos[0]
			}
			rules, err = readRules(src)
		}
	case "update":
		if err = want(2, 2, "ID and PATCH"); err == nil {
			patch, err = readPatch(pos[1])
		}
	default:
		fmt.Fprint(stderr, rulesUsage)
		return inputErrorf("rules: unknown subcommand %q", sub)
	}
	if err != nil {
		return err
	}

	c, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	switch sub {
	case "list":
		sts, err := c.ListRulesByLabels(ctx, labels)
		if err != nil {
			return controlErr(err)
		}
		if *asJSON {
			return writeJSONTo(stdout, sts)
		}
		printRules(stdout, sts)
	case "get":
		st, err := c.GetRule(ctx, pos[0])
		if err != nil {
			return controlErr(err)
		}
		if *asJSON {
			return writeJSONTo(stdout, st)
		}
		printRules(stdout, []faults.RuleStatus{st})
	case "add":
		for _, r := range rules {
			got, rev, err := c.AddRule(ctx, r)
			if err != nil {
				return controlErr(fmt.Errorf("rule %q: %w", r.ID, err))
			}
			fmt.Fprintf(stdout, "added %s (revision %d)\n", got.ID, rev)
		}
	case "update":
		got, rev, err := c.UpdateRule(ctx, pos[0], patch)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(stdout, "updated %s (revision %d)\n", got.ID, rev)
	case "remove":
		if len(labels) > 0 {
			n, rev, err := c.RemoveRulesByLabels(ctx, labels)
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(stdout, "removed %d rules (revision %d)\n", n, rev)
			return nil
		}
		for _, id := range pos {
			rev, err := c.RemoveRule(ctx, id)
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(stdout, "removed %s (revision %d)\n", id, rev)
		}
	case "enable", "disable":
		for _, id := range pos {
			f := c.EnableRule
			if sub == "disable" {
				f = c.DisableRule
			}
			rev, err := f(ctx, id)
			if err != nil {
				return controlErr(err)
			}
			fmt.Fprintf(stdout, "%sd %s (revision %d)\n", sub, id, rev)
		}
	case "replace":
		res, rev, err := c.ReplaceRules(ctx, rules)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(stdout, "replaced the rules (revision %d): added %s; removed %s; kept %s\n",
			rev, listOrNone(res.Added), listOrNone(res.Removed), listOrNone(res.Replaced))
	case "clear":
		n, rev, err := c.ClearRules(ctx)
		if err != nil {
			return controlErr(err)
		}
		fmt.Fprintf(stdout, "removed %d rules (revision %d)\n", n, rev)
	}
	return nil
}

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// readInput reads a file, or stdin for "-".
func readInput(src string) ([]byte, string, error) {
	if src == "-" {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, "", fmt.Errorf("reading stdin: %w", err)
		}
		return data, "<stdin>", nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, "", &inputError{msg: err.Error(), err: err}
	}
	return data, src, nil
}

// readRules reads rules as JSON (one rule, an array of rules, or
// {"rules":[...]}) or as TOML ([[rules]] tables, checked with line numbers).
func readRules(src string) ([]faults.Rule, error) {
	data, name, err := readInput(src)
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if json.Valid(trimmed) {
		var rules []faults.Rule
		switch {
		case bytes.HasPrefix(trimmed, []byte("[")):
			err = json.Unmarshal(trimmed, &rules)
		default:
			var set struct {
				Rules *[]faults.Rule `json:"rules"`
			}
			if err = json.Unmarshal(trimmed, &set); err == nil && set.Rules != nil {
				rules = *set.Rules
			} else {
				var r faults.Rule
				err = json.Unmarshal(trimmed, &r)
				rules = []faults.Rule{r}
			}
		}
		if err != nil {
			return nil, inputErrorf("%s: %v", name, err)
		}
		return rules, nil
	}
	cfg, err := config.Parse(data, name)
	if err != nil {
		return nil, err // config.Errors: exit 2, one line per problem
	}
	return cfg.Rules, nil
}

// readPatch takes a merge patch inline ("{...}"), from a file, or stdin.
func readPatch(arg string) (json.RawMessage, error) {
	data := []byte(arg)
	name := "PATCH"
	if !strings.HasPrefix(strings.TrimSpace(arg), "{") {
		var err error
		if data, name, err = readInput(arg); err != nil {
			return nil, err
		}
	}
	if !json.Valid(data) {
		return nil, inputErrorf("%s: not JSON", name)
	}
	return json.RawMessage(data), nil
}

// printRules writes a table of rules.
func printRules(w io.Writer, sts []faults.RuleStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPRIO\tON\tMATCHED\tFIRED\tACTION\tMATCH")
	for _, st := range sts {
		r := &st.Rule
		on := "yes"
		switch {
		case st.Expired:
			on = "expired"
		case !r.IsEnabled():
			on = "no"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", r.ID, r.Priority, on, st.Matched, st.Fired, actionSummary(&r.Action), matchSummary(&r.Match))
	}
	_ = tw.Flush()
}

func actionSummary(a *faults.Action) string {
	switch a.Type {
	case "error":
		return strings.TrimSpace("error " + strconv.Itoa(a.Code) + " " + a.Reason)
	case "delay":
		return "delay " + a.Delay.String()
	case "ratelimit":
		s := fmt.Sprintf("ratelimit %g/s", a.Rate)
		if a.Then != nil {
			s += " then " + actionSummary(a.Then)
		}
		return s
	}
	return a.Type
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
