package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/webhook"
)

// request is one decoded request on its way through an op.
type request struct {
	ctx    context.Context
	c      *conn                      // nil over /api
	params map[string]json.RawMessage // the message minus id and op
	after  func()                     // run once the reply is queued
	// rev is the revision a rule change made, set by the op from the
	// engine's Change. Mutating ops that change no rules leave it unset,
	// and their reply carries the current revision.
	rev    uint64
	hasRev bool
}

// changed records the revision of the change an op made.
func (r *request) changed(ch faults.Change) {
	r.rev, r.hasRev = ch.Revision, true
}

// opSpec describes one op.
type opSpec struct {
	run func(h *Handler, r *request) (any, *Error)
	// mutating ops carry the revision in their reply. They run
	// concurrently: each engine change is atomic and says what it did
	// (faults.Change), so no op reads the engine again to find out.
	mutating bool
	// socketOnly ops need a WebSocket connection.
	socketOnly bool
}

var ops = map[string]opSpec{
	OpHello:             {run: (*Handler).opHello},
	OpRulesList:         {run: (*Handler).opRulesList},
	OpRulesGet:          {run: (*Handler).opRulesGet},
	OpRulesAdd:          {run: (*Handler).opRulesAdd, mutating: true},
	OpRulesUpdate:       {run: (*Handler).opRulesUpdate, mutating: true},
	OpRulesRemove:       {run: (*Handler).opRulesRemove, mutating: true},
	OpRulesEnable:       {run: (*Handler).opRulesEnable, mutating: true},
	OpRulesDisable:      {run: (*Handler).opRulesDisable, mutating: true},
	OpRulesReplace:      {run: (*Handler).opRulesReplace, mutating: true},
	OpRulesClear:        {run: (*Handler).opRulesClear, mutating: true},
	OpRulesParse:        {run: (*Handler).opRulesParse},
	OpScenariosList:     {run: (*Handler).opScenariosList},
	OpScenariosActivate: {run: (*Handler).opScenariosActivate, mutating: true},
	OpScenariosLoad:     {run: (*Handler).opScenariosLoad, mutating: true},
	OpMachinesList:      {run: (*Handler).opMachinesList},
	OpMachinesSetState:  {run: (*Handler).opMachinesSetState, mutating: true},
	OpJournalQuery:      {run: (*Handler).opJournalQuery},
	OpJournalCount:      {run: (*Handler).opJournalCount},
	OpJournalVerify:     {run: (*Handler).opJournalVerify},
	OpJournalClear:      {run: (*Handler).opJournalClear, mutating: true},
	OpStatsGet:          {run: (*Handler).opStatsGet},
	OpReset:             {run: (*Handler).opReset, mutating: true},
	OpWebhookSet:        {run: (*Handler).opWebhookSet, mutating: true},
	OpSubscribe:         {run: (*Handler).opSubscribe, socketOnly: true},
	OpUnsubscribe:       {run: (*Handler).opUnsubscribe, socketOnly: true},
	OpClockGet:          {run: (*Handler).opClockGet},
	OpClockAdvance:      {run: (*Handler).opClockAdvance, mutating: true},
	OpAllocationsList:   {run: (*Handler).opAllocationsList},
	OpAllocationsExpire: {run: (*Handler).opAllocationsExpire, mutating: true},
	OpPermissionsExpire: {run: (*Handler).opPermissionsExpire, mutating: true},
	OpChannelsExpire:    {run: (*Handler).opChannelsExpire, mutating: true},
	OpNoncesRotate:      {run: (*Handler).opNoncesRotate, mutating: true},
	OpConnectionsClose:  {run: (*Handler).opConnectionsClose, mutating: true},
}

// envelope is a request message decoded: its id (nil when it had none),
// its op, and its parameters (the message minus id and op).
type envelope struct {
	id     *uint64
	op     string
	params map[string]json.RawMessage
}

// maxEchoBytes bounds how much of a bad id or op an error message quotes,
// so that an error reply is small whatever the request.
const maxEchoBytes = 64

// decodeRequest decodes one request message into its envelope. urlOp is the
// op of POST /api/{op} ("" over the WebSocket); socket tells that the
// message came over the WebSocket, where an id is required. On an error the
// envelope still has the id when one was read, for the reply to echo. The
// op is one of [Ops], and the error, if any, is bad_json, missing_id,
// bad_request or unknown_op with a message of at most a few hundred bytes.
func decodeRequest(data []byte, urlOp string, socket bool) (envelope, *Error) {
	var env envelope
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(data, &msg); err != nil || msg == nil {
		text := "message is not a JSON object"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			text = "message is not JSON: " + se.Error()
		}
		return env, &Error{Code: CodeBadJSON, Message: text}
	}
	rawID, hasID := msg["id"]
	switch {
	case hasID:
		id, err := strconv.ParseUint(string(rawID), 10, 64)
		if err != nil {
			return env, &Error{Code: CodeBadRequest, Field: "id",
				Message: "id must be a non-negative integer, got " + clip(rawID)}
		}
		env.id = &id
	case socket:
		return env, &Error{Code: CodeMissingID, Field: "id", Message: "request has no id"}
	}
	op := urlOp
	if raw, ok := msg["op"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return env, &Error{Code: CodeBadRequest, Field: "op", Message: "op must be a string, got " + clip(raw)}
		}
		if urlOp != "" && s != urlOp {
			return env, &Error{Code: CodeBadRequest, Field: "op", Message: fmt.Sprintf("op %s in the body does not match /api/%s", quoteClip(s), clipString(urlOp))}
		}
		op = s
	}
	if op == "" {
		return env, &Error{Code: CodeBadRequest, Field: "op", Message: "request has no op"}
	}
	if _, ok := ops[op]; !ok {
		return env, &Error{Code: CodeUnknownOp, Field: "op", Message: "unknown op " + quoteClip(op)}
	}
	delete(msg, "id")
	delete(msg, "op")
	env.op, env.params = op, msg
	return env, nil
}

// handle runs one request message. c is nil for POST /api/{op}, where
// urlOp is the op and the id is optional. It returns the reply and, for
// subscribe, what to run once the reply is queued.
func (h *Handler) handle(ctx context.Context, c *conn, data []byte, urlOp string) (Reply, func()) {
	env, e := decodeRequest(data, urlOp, c != nil)
	rep := Reply{ID: env.id}
	fail := func(e *Error) (Reply, func()) {
		rep.Error = e
		return rep, nil
	}
	if e != nil {
		return fail(e)
	}
	op, spec := env.op, ops[env.op]
	if spec.socketOnly && c == nil {
		return fail(&Error{Code: CodeBadRequest, Field: "op", Message: op + " needs the WebSocket at /control"})
	}
	r := &request{ctx: ctx, c: c, params: env.params}
	res, e := spec.run(h, r)
	if e != nil {
		return fail(e)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fail(&Error{Code: CodeInternal, Message: "encoding result: " + err.Error()})
	}
	rep.OK, rep.Result = true, b
	if spec.mutating {
		// The revision this op's change made (the engine swapped its
		// snapshot before returning, so the packet path already reads
		// it), or the current one for ops that change no rules.
		rev := r.rev
		if !r.hasRev {
			rev = h.b.Engine().Revision()
		}
		rep.Revision = &rev
	}
	return rep, r.after
}

// clip returns a short rendering of raw JSON for error messages.
func clip(raw json.RawMessage) string {
	return clipString(string(raw))
}

// clipString returns s cut to maxEchoBytes, marked with "..." when cut.
func clipString(s string) string {
	if len(s) > maxEchoBytes {
		return strings.ToValidUTF8(s[:maxEchoBytes], "") + "..."
	}
	return s
}

// quoteClip quotes s, cut to maxEchoBytes, for an error message.
func quoteClip(s string) string {
	if len(s) > maxEchoBytes {
		return strconv.Quote(strings.ToValidUTF8(s[:maxEchoBytes], "")) + "..."
	}
	return strconv.Quote(s)
}

// decode decodes r's parameters into v strictly: unknown fields and wrong
// types are bad_request errors naming the field. Each name in need must be
// present.
func (r *request) decode(v any, need ...string) *Error {
	for _, k := range need {
		if _, ok := r.params[k]; !ok {
			return &Error{Code: CodeBadRequest, Field: k, Message: "missing " + k}
		}
	}
	b, err := json.Marshal(r.params)
	if err != nil {
		return &Error{Code: CodeBadJSON, Message: err.Error()}
	}
	return decodeStrict(b, v, "")
}

// ruleError turns an engine error about rules into invalid_rule.
func ruleError(err error) *Error {
	fes := faults.FieldErrors(err)
	if len(fes) == 0 {
		switch {
		case errors.Is(err, faults.ErrNotFound):
			return &Error{Code: CodeNotFound, Field: "rule_id", Message: err.Error()}
		case errors.Is(err, faults.ErrTooManyRules):
			return &Error{Code: CodeInvalidRule, Field: "rule", Message: strings.TrimPrefix(err.Error(), "faults: ")}
		}
		return &Error{Code: CodeInvalidRule, Message: strings.TrimPrefix(err.Error(), "faults: ")}
	}
	e := &Error{Code: CodeInvalidRule, Field: fes[0].Field, Message: fes[0].Error()}
	if len(fes) > 1 {
		for _, fe := range fes[:min(len(fes), MaxErrorDetails)] {
			e.Details = append(e.Details, ErrorDetail{Field: fe.Field, Message: fe.Msg})
		}
		e.Message = fmt.Sprintf("%s (and %d more)", e.Message, len(fes)-1)
	}
	return e
}

// notFound answers a rule ID the engine does not know.
func notFound(id string) *Error {
	return &Error{Code: CodeNotFound, Field: "rule_id", Message: fmt.Sprintf("no rule %q", id)}
}

// ruleID decodes a rule_id parameter that must not be empty.
func (r *request) ruleID() (string, *Error) {
	var req RuleIDRequest
	if e := r.decode(&req, "rule_id"); e != nil {
		return "", e
	}
	if req.RuleID == "" {
		return "", &Error{Code: CodeBadRequest, Field: "rule_id", Message: "rule_id must not be empty"}
	}
	return req.RuleID, nil
}

func (h *Handler) opHello(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	hello := h.b.Hello()
	hello.Protocol = ProtocolVersion
	hello.Ops = Ops()
	hello.Revision = eng.Revision()
	hello.Scenario = eng.Scenario()
	if hello.Seed == 0 {
		hello.Seed = eng.Seed()
	}
	return hello, nil
}

func (h *Handler) opRulesList(r *request) (any, *Error) {
	var req ListRulesRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	return RulesResult{Rules: h.b.Engine().ListByLabels(req.Labels)}, nil
}

func (h *Handler) opRulesGet(r *request) (any, *Error) {
	id, e := r.ruleID()
	if e != nil {
		return nil, e
	}
	st, err := h.b.Engine().Get(id)
	if err != nil {
		return nil, notFound(id)
	}
	return st, nil
}

func (h *Handler) opRulesAdd(r *request) (any, *Error) {
	var req AddRuleRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	_, one := r.params["rule"]
	_, many := r.params["rules"]
	switch {
	case one && many:
		return nil, &Error{Code: CodeBadRequest, Field: "rules", Message: "give rule or rules, not both"}
	case many:
		if req.Rules == nil {
			return nil, &Error{Code: CodeBadRequest, Field: "rules", Message: "rules must be an array"}
		}
		ch, err := h.b.Engine().AddAll(req.Rules)
		if err != nil {
			return nil, ruleError(err)
		}
		r.changed(ch)
		return AddRulesResult{Rules: ch.Rules, Added: orEmpty(ch.Added), Replaced: orEmpty(ch.Replaced)}, nil
	case !one:
		return nil, &Error{Code: CodeBadRequest, Field: "rule", Message: "missing rule (or rules, to add several as one change)"}
	}
	ch, err := h.b.Engine().Add(req.Rule)
	if err != nil {
		return nil, ruleError(err)
	}
	r.changed(ch)
	return RuleResult{Rule: ch.Rules[0], Replaced: len(ch.Replaced) > 0}, nil
}

// orEmpty returns ids, or an empty slice for nil: lists in results are
// arrays on the wire, never null.
func orEmpty(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

func (h *Handler) opRulesUpdate(r *request) (any, *Error) {
	var req UpdateRuleRequest
	if e := r.decode(&req, "rule_id", "patch"); e != nil {
		return nil, e
	}
	// The patch applies to the rule as it is inside the engine's change:
	// a concurrent update (over another connection, or from Go) is never
	// lost.
	ch, err := h.b.Engine().Update(req.RuleID, func(rule *faults.Rule) error {
		out, e := applyPatch(*rule, req.Patch)
		if e != nil {
			return e
		}
		*rule = out
		return nil
	})
	if err != nil {
		var e *Error
		switch {
		case errors.As(err, &e):
			return nil, e
		case errors.Is(err, faults.ErrNotFound):
			return nil, notFound(req.RuleID)
		}
		return nil, ruleError(err)
	}
	r.changed(ch)
	return RuleResult{Rule: ch.Rules[0], Replaced: true}, nil
}

// applyPatch applies a JSON merge patch (RFC 7396) to rule's JSON and
// decodes the result strictly. It does not validate the rule.
func applyPatch(rule faults.Rule, patch json.RawMessage) (faults.Rule, *Error) {
	var p any
	if err := unmarshalNumber(patch, &p); err != nil {
		return faults.Rule{}, &Error{Code: CodeBadRequest, Field: "patch", Message: "patch is not JSON: " + err.Error()}
	}
	if _, ok := p.(map[string]any); !ok {
		return faults.Rule{}, &Error{Code: CodeBadRequest, Field: "patch", Message: "patch must be a JSON object (RFC 7396 merge patch)"}
	}
	cur, err := json.Marshal(rule)
	if err != nil {
		return faults.Rule{}, &Error{Code: CodeInternal, Message: err.Error()}
	}
	var doc any
	if err := unmarshalNumber(cur, &doc); err != nil {
		return faults.Rule{}, &Error{Code: CodeInternal, Message: err.Error()}
	}
	merged, err := json.Marshal(mergePatch(doc, p))
	if err != nil {
		return faults.Rule{}, &Error{Code: CodeInternal, Message: err.Error()}
	}
	var out faults.Rule
	if e := decodeStrict(merged, &out, "patch"); e != nil {
		return faults.Rule{}, e
	}
	if out.ID != rule.ID {
		return faults.Rule{}, &Error{Code: CodeBadRequest, Field: "patch.id", Message: "a patch cannot change the rule id (add a new rule and remove this one)"}
	}
	return out, nil
}

func unmarshalNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// mergePatch applies patch to target as RFC 7396 §2 describes: objects
// merge key by key, null deletes a key, anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = make(map[string]any)
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

func (h *Handler) opRulesRemove(r *request) (any, *Error) {
	var req RemoveRulesRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	switch {
	case req.RuleID != "" && len(req.Labels) > 0:
		return nil, &Error{Code: CodeBadRequest, Field: "labels", Message: "give rule_id or labels, not both"}
	case req.RuleID != "":
		ch, err := eng.Remove(req.RuleID)
		if err != nil {
			return nil, notFound(req.RuleID)
		}
		r.changed(ch)
		return RemovedResult{Removed: len(ch.Removed)}, nil
	case len(req.Labels) > 0:
		ch := eng.RemoveByLabels(req.Labels)
		r.changed(ch)
		return RemovedResult{Removed: len(ch.Removed)}, nil
	}
	return nil, &Error{Code: CodeBadRequest, Field: "rule_id", Message: "missing rule_id or labels (use rules.clear to remove every rule)"}
}

func (h *Handler) opRulesEnable(r *request) (any, *Error)  { return h.setEnabled(r, true) }
func (h *Handler) opRulesDisable(r *request) (any, *Error) { return h.setEnabled(r, false) }

func (h *Handler) setEnabled(r *request, on bool) (any, *Error) {
	id, e := r.ruleID()
	if e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	ch, err := eng.SetEnabled(id, on)
	if err != nil {
		return nil, notFound(id)
	}
	r.changed(ch)
	// The counters are live; the rule is the one this change stored, even
	// if another change has replaced or removed it since.
	st, err := eng.Get(id)
	if err != nil {
		st = faults.RuleStatus{}
	}
	st.Rule = ch.Rules[0]
	return st, nil
}

func (h *Handler) opRulesReplace(r *request) (any, *Error) {
	var req ReplaceRulesRequest
	if e := r.decode(&req, "rules"); e != nil {
		return nil, e
	}
	ch, err := h.b.Engine().Replace(req.Rules)
	if err != nil {
		return nil, ruleError(err)
	}
	r.changed(ch)
	return ReplaceResult{Added: orEmpty(ch.Added), Removed: orEmpty(ch.Removed), Replaced: orEmpty(ch.Replaced)}, nil
}

func (h *Handler) opRulesClear(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	ch := h.b.Engine().Clear()
	r.changed(ch)
	return RemovedResult{Removed: len(ch.Removed)}, nil
}

func (h *Handler) opScenariosList(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	return ScenariosResult{Scenarios: orEmpty(eng.Scenarios()), Active: eng.Scenario(), Step: scenarioStep(eng)}, nil
}

func (h *Handler) opScenariosLoad(r *request) (any, *Error) {
	var req ScenariosLoadRequest
	if e := r.decode(&req, "scenarios"); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	res, err := eng.LoadScenarios(req.Scenarios)
	if errors.Is(err, faults.ErrNoScenarios) {
		return nil, &Error{Code: CodeBadRequest, Field: "scenarios", Message: "no scenarios given (want {\"NAME\": {\"rules\": [...]}} or steps)"}
	}
	if err != nil {
		return nil, ruleError(err)
	}
	r.changed(faults.Change{Revision: res.Revision})
	return ScenariosLoadResult{Added: res.Added, Replaced: res.Replaced, Scenarios: orEmpty(eng.Scenarios())}, nil
}

func (h *Handler) opScenariosActivate(r *request) (any, *Error) {
	var req ScenarioRequest
	if e := r.decode(&req, "name"); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	ch, err := eng.ActivateScenario(req.Name)
	if err != nil {
		if errors.Is(err, faults.ErrNotFound) {
			return nil, &Error{Code: CodeUnknownScenario, Field: "name",
				Message: unknownScenario(req.Name, eng.Scenarios())}
		}
		return nil, ruleError(err)
	}
	r.changed(ch)
	return ScenariosResult{Scenarios: orEmpty(eng.Scenarios()), Active: req.Name, Step: scenarioStep(eng)}, nil
}

// unknownScenario says that name is not a scenario, and which ones exist,
// or how to get some when there are none.
func unknownScenario(name string, have []string) string {
	if len(have) == 0 {
		return fmt.Sprintf("no scenario %q: the server has no scenarios (the default config has none); load some with `stunfault scenario load FILE` (scenarios.load), or start the server with a config that has [scenarios.NAME]", name)
	}
	return fmt.Sprintf("no scenario %q (the server has %s)", name, strings.Join(have, ", "))
}

// scenarioStep is the running timed scenario's step, or nil.
func scenarioStep(eng *faults.Engine) *faults.ScenarioStep {
	if st, ok := eng.ScenarioStep(); ok {
		return &st
	}
	return nil
}

func (h *Handler) opMachinesList(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	return MachinesResult{Machines: h.b.Engine().MachineStates()}, nil
}

func (h *Handler) opMachinesSetState(r *request) (any, *Error) {
	var req MachineStateRequest
	if e := r.decode(&req, "machine", "state"); e != nil {
		return nil, e
	}
	switch {
	case req.Machine == "":
		return nil, &Error{Code: CodeBadRequest, Field: "machine", Message: "machine must not be empty"}
	case req.State == "":
		return nil, &Error{Code: CodeBadRequest, Field: "state", Message: "state must not be empty"}
	}
	eng := h.b.Engine()
	if err := eng.SetMachineState(req.Machine, req.State); err != nil {
		return nil, &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return MachinesResult{Machines: eng.MachineStates()}, nil
}

// checkQuery answers the first problem faults.Query.Validate finds in q
// (a typo'd method, an unparsable client), naming the field under prefix.
func checkQuery(prefix string, q faults.Query) *Error {
	fes := faults.FieldErrors(q.Validate())
	if len(fes) == 0 {
		return nil
	}
	f := prefix + "." + fes[0].Field
	return &Error{Code: CodeBadRequest, Field: f, Message: f + ": " + fes[0].Msg}
}

func (h *Handler) opJournalQuery(r *request) (any, *Error) {
	var req JournalRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	if e := checkQuery("query", req.Query); e != nil {
		return nil, e
	}
	j := h.b.Engine().Journal()
	entries := j.Query(req.Query)
	if entries == nil {
		entries = []faults.Entry{}
	}
	return EntriesResult{Entries: entries, LastSeq: j.LastSeq()}, nil
}

func (h *Handler) opJournalCount(r *request) (any, *Error) {
	var req JournalRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	if e := checkQuery("query", req.Query); e != nil {
		return nil, e
	}
	return CountResult{Count: h.b.Engine().Journal().Count(req.Query)}, nil
}

func (h *Handler) opJournalVerify(r *request) (any, *Error) {
	var req VerifyRequest
	if e := r.decode(&req, "expected"); e != nil {
		return nil, e
	}
	if e := checkQuery("query", req.Query); e != nil {
		return nil, e
	}
	if req.Expected < 0 {
		return nil, &Error{Code: CodeBadRequest, Field: "expected", Message: "expected must not be negative"}
	}
	return h.b.Engine().Journal().Verify(req.Query, req.Expected), nil
}

func (h *Handler) opJournalClear(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	j := h.b.Engine().Journal()
	n := j.Len()
	j.Clear()
	return CountResult{Count: n}, nil
}

func (h *Handler) opStatsGet(r *request) (any, *Error) {
	if e := r.decode(&struct{}{}); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	st := h.b.Stats()
	st.Revision = eng.Revision()
	st.Scenario = eng.Scenario()
	st.Machines = eng.MachineStates()
	st.Rules = []RuleCounters{}
	for _, rs := range eng.List() {
		st.Rules = append(st.Rules, RuleCounters{
			ID: rs.Rule.ID, Enabled: rs.Rule.IsEnabled(),
			Matched: rs.Matched, Fired: rs.Fired, LetThrough: rs.LetThrough,
		})
	}
	j := eng.Journal()
	st.Journal = JournalStats{Len: j.Len(), LastSeq: j.LastSeq()}
	return st, nil
}

// allScopes is every reset scope, in the order reset applies them.
var allScopes = []string{ScopeRules, ScopeCounters, ScopeMachines, ScopeJournal}

func (h *Handler) opReset(r *request) (any, *Error) {
	var req ResetRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	scopes := req.Scope
	if len(scopes) == 0 {
		scopes = allScopes
	}
	for i, s := range scopes {
		if !slices.Contains(allScopes, s) {
			f := fmt.Sprintf("scope[%d]", i)
			return nil, &Error{Code: CodeBadRequest, Field: f,
				Message: fmt.Sprintf("%s: unknown scope %q (want any of %s)", f, s, strings.Join(allScopes, ", "))}
		}
	}
	eng := h.b.Engine()
	res := ResetResult{Reset: []string{}}
	for _, s := range allScopes {
		if !slices.Contains(scopes, s) {
			continue
		}
		switch s {
		case ScopeRules:
			r.changed(eng.Clear())
		case ScopeCounters:
			eng.ResetCounters()
		case ScopeMachines:
			eng.ResetMachines()
		case ScopeJournal:
			eng.Journal().Clear()
		}
		res.Reset = append(res.Reset, s)
	}
	return res, nil
}

func (h *Handler) opWebhookSet(r *request) (any, *Error) {
	var req WebhookRequest
	if e := r.decode(&req, "name"); e != nil {
		return nil, e
	}
	s := req.WebhookSettings
	switch {
	case req.Name == "":
		return nil, &Error{Code: CodeBadRequest, Field: "name", Message: "name must not be empty"}
	}
	// The config's ranges, in its words, whatever the backend checks.
	ws := webhook.Settings{Latency: s.Latency, Mode: s.Mode, Status: s.Status, SyntheticPending: s.SyntheticPending}
	if fes := faults.FieldErrors(ws.Validate()); len(fes) > 0 {
		return nil, &Error{Code: CodeBadRequest, Field: fes[0].Field, Message: fes[0].Error()}
	}
	if err := h.b.SetWebhook(r.ctx, req.Name, s); err != nil {
		if errors.Is(err, webhook.ErrUnknownWebhook) {
			return nil, &Error{Code: CodeUnknownWebhook, Field: "name", Message: fmt.Sprintf("no webhook %q", req.Name)}
		}
		if fes := faults.FieldErrors(err); len(fes) > 0 {
			return nil, &Error{Code: CodeBadRequest, Field: fes[0].Field, Message: fes[0].Error()}
		}
		return nil, &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return WebhookResult(req), nil
}

func (h *Handler) opSubscribe(r *request) (any, *Error) {
	var req SubscribeRequest
	if e := r.decode(&req); e != nil {
		return nil, e
	}
	if e := checkQuery("filter", req.Filter); e != nil {
		return nil, e
	}
	switch {
	case req.Filter.SinceSeq != 0:
		return nil, &Error{Code: CodeBadRequest, Field: "filter.since_seq", Message: "filter.since_seq: put since_seq next to filter, not in it"}
	case req.Filter.Limit != 0:
		return nil, &Error{Code: CodeBadRequest, Field: "filter.limit", Message: "filter.limit: a subscription has no limit"}
	case req.Buffer < 0 || req.Buffer > MaxEventBuffer:
		return nil, &Error{Code: CodeBadRequest, Field: "buffer", Message: fmt.Sprintf("buffer must be 0..%d", MaxEventBuffer)}
	}
	buffer := req.Buffer
	if buffer == 0 {
		buffer = DefaultEventBuffer
	}
	if e := r.c.admit(); e != nil {
		return nil, e
	}
	eng := h.b.Engine()
	j := eng.Journal()
	// Subscribe before reading the journal: a firing in between is in
	// both, and the forwarder skips it live. The other order would lose it.
	fs := eng.Subscribe(buffer, req.Filter)
	last := j.LastSeq()
	var replay []faults.Entry
	truncated := false
	if req.SinceSeq != nil {
		since := *req.SinceSeq
		q := req.Filter
		q.SinceSeq = since
		replay = j.Query(q)
		if last > since {
			oldest := j.Query(faults.Query{Limit: 1})
			truncated = len(oldest) == 0 || oldest[0].Seq > since+1
		}
	}
	s, start := r.c.subscribe(fs, replay)
	r.after = start
	return SubscribeResult{Subscription: s.id, Replayed: len(replay), Truncated: truncated, LastSeq: last}, nil
}

func (h *Handler) opUnsubscribe(r *request) (any, *Error) {
	var req UnsubscribeRequest
	if e := r.decode(&req, "subscription"); e != nil {
		return nil, e
	}
	if !r.c.unsubscribe(req.Subscription) {
		return nil, &Error{Code: CodeNotFound, Field: "subscription", Message: fmt.Sprintf("no subscription %d on this connection", req.Subscription)}
	}
	return struct{}{}, nil
}
