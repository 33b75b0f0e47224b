package control

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/stunfault/stunfault/faults"
)

// ProtocolVersion is the version of the control protocol, sent in the reply
// to hello. It grows when an op changes in a way old clients would misread;
// new ops and new optional fields do not change it.
const ProtocolVersion = 1

// The ops of the control protocol: the "op" of a request, or the {op} of
// POST /api/{op}. docs/control.md has a request and a reply for each.
const (
	OpHello             = "hello"
	OpRulesList         = "rules.list"
	OpRulesGet          = "rules.get"
	OpRulesAdd          = "rules.add"
	OpRulesUpdate       = "rules.update"
	OpRulesRemove       = "rules.remove"
	OpRulesEnable       = "rules.enable"
	OpRulesDisable      = "rules.disable"
	OpRulesReplace      = "rules.replace"
	OpRulesClear        = "rules.clear"
	OpRulesParse        = "rules.parse"
	OpScenariosList     = "scenarios.list"
	OpScenariosActivate = "scenarios.activate"
	OpScenariosLoad     = "scenarios.load"
	OpMachinesList      = "machines.list"
	OpMachinesSetState  = "machines.set_state"
	OpJournalQuery      = "journal.query"
	OpJournalCount      = "journal.count"
	OpJournalVerify     = "journal.verify"
	OpJournalClear      = "journal.clear"
	OpStatsGet          = "stats.get"
	OpReset             = "reset"
	OpWebhookSet        = "webhook.set"
	OpSubscribe         = "subscribe"
	OpUnsubscribe       = "unsubscribe"
	OpClockGet          = "clock.get"
	OpClockAdvance      = "clock.advance"
	OpAllocationsList   = "allocations.list"
	OpAllocationsExpire = "allocations.expire"
	OpPermissionsExpire = "permissions.expire"
	OpChannelsExpire    = "channels.expire"
	OpNoncesRotate      = "nonces.rotate"
	OpConnectionsClose  = "connections.close"
)

// Ops returns every op the handler serves, in the order docs/control.md
// lists them.
func Ops() []string {
	return []string{
		OpHello, OpRulesList, OpRulesGet, OpRulesAdd, OpRulesUpdate, OpRulesRemove,
		OpRulesEnable, OpRulesDisable, OpRulesReplace, OpRulesClear, OpRulesParse,
		OpScenariosList, OpScenariosActivate, OpScenariosLoad, OpMachinesList, OpMachinesSetState,
		OpJournalQuery, OpJournalCount, OpJournalVerify, OpJournalClear,
		OpStatsGet, OpReset, OpWebhookSet, OpSubscribe, OpUnsubscribe,
		OpClockGet, OpClockAdvance, OpAllocationsList, OpAllocationsExpire,
		OpPermissionsExpire, OpChannelsExpire, OpNoncesRotate, OpConnectionsClose,
	}
}

// The reset scopes: what the reset op clears. An empty scope means all four.
const (
	ScopeRules    = "rules"
	ScopeJournal  = "journal"
	ScopeCounters = "counters"
	ScopeMachines = "machines"
)

// Error codes: the stable, machine-readable Code of an [Error]. Clients
// branch on these, never on the message.
const (
	// CodeBadJSON means the message is not JSON, or not a JSON object.
	CodeBadJSON = "bad_json"
	// CodeUnknownOp means the op is not one of [Ops].
	CodeUnknownOp = "unknown_op"
	// CodeMissingID means a WebSocket request had no id.
	CodeMissingID = "missing_id"
	// CodeBadRequest means a parameter is missing, of the wrong type, unknown or
	// out of range; Field names it.
	CodeBadRequest = "bad_request"
	// CodeNotFound means there is no rule (or subscription) with that id.
	CodeNotFound = "not_found"
	// CodeInvalidRule means a rule failed validation; Field is the rule field
	// ("match.methods[0]", or "rules[2].action.code" for rules.replace).
	CodeInvalidRule = "invalid_rule"
	// CodeUnknownScenario means there is no scenario of that name.
	CodeUnknownScenario = "unknown_scenario"
	// CodeUnknownWebhook means there is no webhook of that name.
	CodeUnknownWebhook = "unknown_webhook"
	// CodeUnauthorized means the token is missing or wrong.
	CodeUnauthorized = "unauthorized"
	// CodeForbiddenOrigin means a browser page of another origin tried to use
	// the control socket or /api.
	CodeForbiddenOrigin = "forbidden_origin"
	// CodeTooLarge means the request is larger than the handler accepts.
	CodeTooLarge = "too_large"
	// CodeUnsupportedMediaType means a POST /api request's Content-Type was
	// not application/json.
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeLimitExceeded means a bound was reached (subscriptions per
	// connection or in total); the request may succeed once others end.
	CodeLimitExceeded = "limit_exceeded"
	// CodeUnknownAllocation means no live allocation matches the
	// selector.
	CodeUnknownAllocation = "unknown_allocation"
	// CodeClockNotManual means clock.advance was sent to a server on the
	// system clock (start it with [server] clock = "manual").
	CodeClockNotManual = "clock_not_manual"
	// CodeInternal means the server failed; the request may be retried.
	CodeInternal = "internal"
)

// ErrorDetail is one of several problems reported by one [Error], such as
// one bad rule among those given to rules.replace.
type ErrorDetail struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Line is the line of rules.parse's text at fault (0 when unknown).
	Line int `json:"line,omitempty"`
}

// MaxErrorDetails bounds the Details of one [Error]: a request with more
// problems (rules.replace with thousands of bad rules) lists the first
// ones, and its Message says how many there are in all.
const MaxErrorDetails = 100

// Error is the error envelope of a failed reply, and the error the [Client]
// returns for it (use errors.As). Code is one of the Code constants, Field
// the request field at fault ("" when none is), and Details every problem
// when there are several (Field and Message are then the first's; at most
// MaxErrorDetails of them).
type Error struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field,omitempty"`
	Details []ErrorDetail `json:"details,omitempty"`
	// Line is the line of rules.parse's text at fault (0 when unknown).
	Line int `json:"line,omitempty"`
}

// Error returns "control: CODE: MESSAGE".
func (e *Error) Error() string {
	return "control: " + e.Code + ": " + e.Message
}

// HTTPStatus returns the HTTP status POST /api/{op} answers a reply with
// this error with.
func (e *Error) HTTPStatus() int {
	switch e.Code {
	case CodeUnknownOp, CodeNotFound, CodeUnknownScenario, CodeUnknownWebhook, CodeUnknownAllocation:
		return http.StatusNotFound
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbiddenOrigin:
		return http.StatusForbidden
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeInvalidRule:
		return http.StatusUnprocessableEntity
	case CodeInternal:
		return http.StatusInternalServerError
	case CodeLimitExceeded:
		return http.StatusTooManyRequests
	case CodeClockNotManual:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// Reply is one answer to one request. ID echoes the request's id (absent
// when the request had none, or one that was not an integer). OK tells
// whether Result or Error is set. Revision is the engine revision after a
// mutating op: the packet path already reads it when the reply is sent.
type Reply struct {
	ID       *uint64         `json:"id,omitempty"`
	OK       bool            `json:"ok"`
	Revision *uint64         `json:"revision,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *Error          `json:"error,omitempty"`
}

// The kinds of [Event].
const (
	// EventDecision is the kind of an event that is one rule firing, as the journal records it.
	EventDecision = "decision"
	// EventStep is the kind of an event that is a timed scenario's step
	// change, as the journal records it (action "step", with step set).
	EventStep = "step"
	// EventLost says Count events matching the subscription were dropped
	// because the subscriber did not keep up.
	EventLost = "lost"
)

// Event is a message the server pushes to a subscriber, unasked. A decision
// event (and a step event, whose step object says which step of which
// timed scenario became active) carries the journal entry's fields at the top level (seq, time,
// rule, action, code, method, class, transport, direction, src, size,
// labels, seed); a lost event carries Count. Subscription is the id the
// subscribe reply gave.
type Event struct {
	Event        string `json:"event"`
	Subscription uint64 `json:"subscription"`
	// Entry is set for decision events. Its fields are flattened into the
	// event's JSON object.
	*faults.Entry
	// Count is how many events were lost (lost events only).
	Count uint64 `json:"count,omitempty"`
}

// Hello is the result of hello: who the server is and what it can do. A
// Backend fills in Version, Seed and Capabilities; the handler adds
// Protocol, Ops, Revision and Scenario.
type Hello struct {
	Protocol int    `json:"protocol"`
	Version  string `json:"version"`
	// Seed is the server's RNG seed, so a run can be replayed.
	Seed     uint64 `json:"seed"`
	Revision uint64 `json:"revision"`
	Scenario string `json:"scenario,omitempty"`
	// Ops are the ops the server answers.
	Ops []string `json:"ops"`
	// Capabilities are optional features of this server ("webhooks",
	// "tcp", ...), free-form.
	Capabilities []string `json:"capabilities,omitempty"`
}

// ListenerStats is one STUN/TURN listening socket, in [Stats].
type ListenerStats struct {
	Transport string `json:"transport"`
	Address   string `json:"address"`
	// TCP counts a tcp or tls listener's connections; nil for udp.
	TCP *TCPStats `json:"tcp,omitempty"`
	// Loops are a udp listener's read loops ([server] read_loops sockets
	// on its one address), in bind order; nil for tcp and tls.
	Loops []LoopStats `json:"loops,omitempty"`
}

// LoopStats is one read loop of a udp listener, in [ListenerStats]: the
// kernel hands each client's datagrams to one loop, by a hash of the
// client's address and port.
type LoopStats struct {
	// Datagrams counts the datagrams the loop read from its socket.
	Datagrams uint64 `json:"datagrams"`
}

// TCPStats counts one tcp or tls listener's connections, in
// [ListenerStats].
type TCPStats struct {
	// Open counts connections open now.
	Open int64 `json:"open"`
	// Refused counts connections closed as they were accepted, beyond
	// [server] tcp_max_connections.
	Refused uint64 `json:"refused"`
	// TimedOut counts connections closed by tcp_idle_timeout or
	// tcp_frame_timeout.
	TimedOut uint64 `json:"timed_out"`
}

// WebhookStats is the load on one simulated webhook, in [Stats].
type WebhookStats struct {
	// Inflight counts HTTP requests held open now.
	Inflight int `json:"inflight"`
	// Pending counts held requests plus async work in progress.
	Pending int `json:"pending"`
	// Mode is the webhook's mode now, "sync" or "async" (webhook.set
	// changes it).
	Mode string `json:"mode,omitempty"`
}

// RuleCounters are one rule's counters, in [Stats].
type RuleCounters struct {
	ID         string `json:"id"`
	Enabled    bool   `json:"enabled"`
	Matched    uint64 `json:"matched"`
	Fired      uint64 `json:"fired"`
	LetThrough uint64 `json:"let_through"`
}

// JournalStats describes the journal, in [Stats].
type JournalStats struct {
	// Len is how many entries it holds.
	Len int `json:"len"`
	// LastSeq is the sequence number of the latest firing.
	LastSeq uint64 `json:"last_seq"`
}

// InterceptStats counts what the interception layer did besides applying
// rules, in [Stats].
type InterceptStats struct {
	// DelaysPending is how many delayed messages the server holds now, and
	// DelayedBytes their size: at most 4096 and 16 MiB across all sockets.
	DelaysPending int `json:"delays_pending"`
	DelayedBytes  int `json:"delayed_bytes"`
	// DelayOverflows counts messages a delay rule fired on that passed at
	// once because the delay budget was spent (journaled as
	// delay_overflow).
	DelayOverflows uint64 `json:"delay_overflows"`
	// Panics counts panics recovered while handling one message; each such
	// message passed untouched and the panic was logged with its rule.
	Panics uint64 `json:"panics"`
	// ReplyErrors counts injected error responses that could not be built.
	ReplyErrors uint64 `json:"reply_errors"`
}

// Stats is the result of stats.get. A Backend fills in what only the server
// knows (Listeners, Allocations, Webhooks); the handler fills in the rest
// from the engine.
type Stats struct {
	Listeners []ListenerStats `json:"listeners,omitempty"`
	// Allocations is the number of live TURN allocations, when known.
	Allocations *int                    `json:"allocations,omitempty"`
	Webhooks    map[string]WebhookStats `json:"webhooks,omitempty"`
	Revision    uint64                  `json:"revision"`
	Scenario    string                  `json:"scenario,omitempty"`
	Rules       []RuleCounters          `json:"rules"`
	Machines    map[string]string       `json:"machines,omitempty"`
	Journal     JournalStats            `json:"journal"`
	// Intercept is filled in by a server (nil from a Backend that has no
	// interception layer).
	Intercept *InterceptStats `json:"intercept,omitempty"`
}

// WebhookSettings are the runtime changes webhook.set makes to a simulated
// webhook. A nil field is left as it is.
type WebhookSettings struct {
	// Latency is how long a request is held (sync) or its work stays
	// pending (async).
	Latency *faults.Duration `json:"latency,omitempty"`
	// Mode is "sync" or "async".
	Mode *string `json:"mode,omitempty"`
	// Status is the HTTP status the webhook answers (200-599, as in the
	// config).
	Status *int `json:"status,omitempty"`
	// SyntheticPending adds this many pending requests that count for
	// min_pending without any HTTP call (0 removes them).
	SyntheticPending *int `json:"synthetic_pending,omitempty"`
}

// Requests. Each is the body of one op's request: over the WebSocket, its
// fields sit next to "id" and "op" in one JSON object; over POST /api/{op}
// it is the whole body. Ops not listed here (hello, rules.clear,
// scenarios.list, machines.list, journal.clear, stats.get) take no
// parameters.

// ListRulesRequest is the request of rules.list: only rules with all these
// labels (every rule when empty).
type ListRulesRequest struct {
	Labels map[string]string `json:"labels,omitempty"`
}

// RuleIDRequest is the request of rules.get, rules.enable and
// rules.disable.
type RuleIDRequest struct {
	RuleID string `json:"rule_id"`
}

// AddRuleRequest is the request of rules.add. Give one of Rule and Rules.
// Rule is added, or replaces the rule with its ID (resetting its counters);
// the result is a [RuleResult]. Rules are added the same way as one change
// with one revision, all or nothing: if any is invalid (or two share an ID)
// nothing changes and the error lists every problem ("rules[2].action.code");
// the result is an [AddRulesResult].
type AddRuleRequest struct {
	Rule  faults.Rule   `json:"rule,omitzero"`
	Rules []faults.Rule `json:"rules,omitzero"`
}

// UpdateRuleRequest is the request of rules.update: Patch is a JSON merge
// patch (RFC 7396) applied to the rule's JSON; the result is validated and
// replaces the rule (resetting its counters). Patch may not change the id.
type UpdateRuleRequest struct {
	RuleID string          `json:"rule_id"`
	Patch  json.RawMessage `json:"patch"`
}

// RemoveRulesRequest is the request of rules.remove: give exactly one of
// RuleID (an unknown one is not_found) and Labels (every rule with all of
// them; none matching is not an error).
type RemoveRulesRequest struct {
	RuleID string            `json:"rule_id,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// ReplaceRulesRequest is the request of rules.replace: the new rule set,
// validated as a whole before anything changes.
type ReplaceRulesRequest struct {
	Rules []faults.Rule `json:"rules"`
}

// ParseRulesRequest is the request of rules.parse: Text holds rules as
// `stunfault rules add` reads them (TOML [[rules]] tables, or JSON), and
// Name is what the messages call it ("input" when empty).
type ParseRulesRequest struct {
	Text string `json:"text"`
	Name string `json:"name,omitempty"`
}

// ParseRulesResult is the result of rules.parse: the rules the text holds,
// not yet added (give them to rules.add or rules.replace).
type ParseRulesResult struct {
	Rules []faults.Rule `json:"rules"`
}

// ScenarioRequest is the request of scenarios.activate.
type ScenarioRequest struct {
	Name string `json:"name"`
}

// MachineStateRequest is the request of machines.set_state.
type MachineStateRequest struct {
	Machine string `json:"machine"`
	State   string `json:"state"`
}

// JournalRequest is the request of journal.query and journal.count. Query
// selects the entries (its limit applies to journal.query only).
type JournalRequest struct {
	Query faults.Query `json:"query"`
}

// VerifyRequest is the request of journal.verify: do exactly Expected
// entries match Query?
type VerifyRequest struct {
	Query    faults.Query `json:"query"`
	Expected int          `json:"expected"`
}

// ResetRequest is the request of reset: any of the Scope constants; all of
// them when empty.
type ResetRequest struct {
	Scope []string `json:"scope,omitempty"`
}

// WebhookRequest is the request of webhook.set: the settings sit next to the
// webhook's name.
type WebhookRequest struct {
	Name string `json:"name"`
	WebhookSettings
}

// SubscribeRequest is the request of subscribe. Filter selects the events
// (its since_seq and limit must be 0). SinceSeq, when set, first replays
// the matching journal entries with a greater seq, then goes on live, with
// no gap and no duplicate. Buffer is how many events the server queues for
// this subscriber before it drops (and counts) them: 0 means
// [DefaultEventBuffer].
type SubscribeRequest struct {
	Filter   faults.Query `json:"filter"`
	SinceSeq *uint64      `json:"since_seq,omitempty"`
	Buffer   int          `json:"buffer,omitempty"`
}

// UnsubscribeRequest is the request of unsubscribe.
type UnsubscribeRequest struct {
	Subscription uint64 `json:"subscription"`
}

// Results. Each is the "result" of one op's successful reply.

// RulesResult is the result of rules.list.
type RulesResult struct {
	Rules []faults.RuleStatus `json:"rules"`
}

// RuleResult is the result of rules.add and rules.update: the rule as
// stored (its ID filled in). Replaced tells whether a rule with that ID
// existed before.
type RuleResult struct {
	Rule     faults.Rule `json:"rule"`
	Replaced bool        `json:"replaced,omitempty"`
}

// AddRulesResult is the result of rules.add with rules: the rules as stored
// (IDs filled in), in the order given, and which of their IDs are new and
// which replaced a rule.
type AddRulesResult struct {
	Rules    []faults.Rule `json:"rules"`
	Added    []string      `json:"added"`
	Replaced []string      `json:"replaced"`
}

// RemovedResult is the result of rules.remove and rules.clear: how many
// rules went.
type RemovedResult struct {
	Removed int `json:"removed"`
}

// ReplaceResult is the result of rules.replace: the IDs that are new, gone,
// and kept (kept rules start with fresh counters too).
type ReplaceResult struct {
	Added    []string `json:"added"`
	Removed  []string `json:"removed"`
	Replaced []string `json:"replaced"`
}

// ScenariosLoadRequest is the request of scenarios.load: scenarios by
// name, each as [scenarios.NAME] in a config file is (a rule set, or steps).
type ScenariosLoadRequest struct {
	Scenarios map[string]faults.Scenario `json:"scenarios"`
}

// ScenariosLoadResult is the result of scenarios.load: the names it added
// and replaced, and every scenario the server now has.
type ScenariosLoadResult struct {
	Added     []string `json:"added"`
	Replaced  []string `json:"replaced"`
	Scenarios []string `json:"scenarios"`
}

// ScenariosResult is the result of scenarios.list (and, with only Active
// set, of scenarios.activate). Scenarios is always present, [] when the
// server has none.
type ScenariosResult struct {
	Scenarios []string `json:"scenarios"`
	// Active is the scenario activated last, unless rules changed since.
	Active string `json:"active,omitempty"`
	// Step is where the running timed scenario is (its active step and
	// the time to the next), absent when none runs.
	Step *faults.ScenarioStep `json:"step,omitempty"`
}

// MachinesResult is the result of machines.list and machines.set_state:
// every machine's state.
type MachinesResult struct {
	Machines map[string]string `json:"machines"`
}

// EntriesResult is the result of journal.query. LastSeq is the journal's
// latest seq, for paging with since_seq.
type EntriesResult struct {
	Entries []faults.Entry `json:"entries"`
	LastSeq uint64         `json:"last_seq"`
}

// CountResult is the result of journal.count and journal.clear (how many
// entries were dropped).
type CountResult struct {
	Count int `json:"count"`
}

// VerifyResult is the result of journal.verify: the journal's own
// [faults.Verification]. Match is Expected == Actual; on a mismatch
// NearMisses holds up to five entries the query did not select, those
// failing the fewest query fields first (latest first among equals).
type VerifyResult = faults.Verification

// ResetResult is the result of reset: the scopes cleared.
type ResetResult struct {
	Reset []string `json:"reset"`
}

// WebhookResult is the result of webhook.set: the request, echoed.
type WebhookResult = WebhookRequest

// SubscribeResult is the result of subscribe. Subscription tags this
// subscription's events. Replayed is how many journal entries follow the
// reply before live events. Truncated tells that the journal no longer
// holds every firing after since_seq (it is bounded, or was cleared), so
// some may be missing from the replay. LastSeq is the journal's latest seq
// when the subscription started.
type SubscribeResult struct {
	Subscription uint64 `json:"subscription"`
	Replayed     int    `json:"replayed"`
	Truncated    bool   `json:"truncated,omitempty"`
	LastSeq      uint64 `json:"last_seq"`
}

// MaxClockAdvance bounds the by of one clock.advance.
const MaxClockAdvance = 366 * 24 * time.Hour

// ClockRequest is the request of clock.advance: how far to move the clock
// (a Go duration string, "30s"; 0 to MaxClockAdvance).
type ClockRequest struct {
	By faults.Duration `json:"by"`
}

// ClockResult is the result of clock.get and clock.advance.
type ClockResult struct {
	// Now is the server's time (after the advance).
	Now time.Time `json:"now"`
	// Manual tells whether the clock is a manual one that clock.advance
	// moves.
	Manual bool `json:"manual"`
	// Pending is how many timers a manual clock has armed (held webhook
	// requests, delayed messages, a timed scenario's next step).
	Pending int `json:"pending,omitempty"`
}

// Allocation is one live TURN allocation, as allocations.list reports it.
type Allocation struct {
	// Client and Server are the 5-tuple's addresses: the client's, and the
	// listener's it allocated on.
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
	// Transport is the client's transport to the server: udp or tcp (tls
	// counts as tcp).
	Transport string `json:"transport"`
	// Username is the USERNAME the client allocated with.
	Username string `json:"username"`
	// Relay is the relayed transport address.
	Relay netip.AddrPort `json:"relay"`
	// Created is when pion made the allocation (wall time).
	Created time.Time `json:"created"`
	// LifetimeLeft is the time to expiry: the LIFETIME of pion's last
	// Allocate or Refresh success to the client, counted from when it went
	// out (the default [relay].allocation_lifetime, or the shorter one the
	// client asked for). On real time: pion's lifetimes do not follow a
	// manual clock.
	LifetimeLeft faults.Duration `json:"lifetime_left"`
	// Permissions and Channels are the allocation's, by peer and number.
	Permissions []AllocationPermission `json:"permissions"`
	Channels    []AllocationChannel    `json:"channels"`
}

// AllocationPermission is one permission of an [Allocation].
type AllocationPermission struct {
	Peer netip.Addr `json:"peer"`
	// LifetimeLeft is [relay].permission_lifetime counted from the last
	// CreatePermission or ChannelBind success for the peer.
	LifetimeLeft faults.Duration `json:"lifetime_left"`
}

// AllocationChannel is one channel binding of an [Allocation].
type AllocationChannel struct {
	Number uint16         `json:"number"`
	Peer   netip.AddrPort `json:"peer"`
}

// AllocationsResult is the result of allocations.list and
// allocations.expire (the allocations expired).
type AllocationsResult struct {
	Allocations []Allocation `json:"allocations"`
}

// AllocationSelector selects the allocations allocations.expire ends:
// exactly one of Client (the client's address:port), Username, or All.
type AllocationSelector struct {
	Client   string `json:"client,omitempty"`
	Username string `json:"username,omitempty"`
	All      bool   `json:"all,omitempty"`
}

// String describes the selector, for errors.
func (s AllocationSelector) String() string {
	switch {
	case s.All:
		return "all"
	case s.Client != "":
		return "client " + s.Client
	}
	return "username " + strconv.Quote(s.Username)
}

// PermissionSelector selects the permissions permissions.expire ends: the
// permission for Peer (an IP address) of the allocations the
// AllocationSelector selects.
type PermissionSelector struct {
	AllocationSelector
	Peer string `json:"peer"`
}

// ChannelSelector selects the channel bindings channels.expire ends: the
// binding of Channel (0x4000 to 0x7FFF) of the allocations the
// AllocationSelector selects.
type ChannelSelector struct {
	AllocationSelector
	Channel uint16 `json:"channel"`
}

// The channel numbers a client can bind: pion/turn accepts RFC 5766's
// range, 0x4000 to 0x7FFF (RFC 8656 §12 narrowed it to 0x4FFF; RFC 5766
// clients such as coturn's turnutils_uclient bind numbers above that).
const (
	MinChannel uint16 = 0x4000
	MaxChannel uint16 = 0x7FFF
)

// ExpiredPermission is one permission permissions.expire ended: the
// allocation's 5-tuple and relayed address, and the peer.
type ExpiredPermission struct {
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
	Relay  netip.AddrPort `json:"relay"`
	Peer   netip.Addr     `json:"peer"`
}

// ExpiredChannel is one channel binding channels.expire ended: the
// allocation's 5-tuple and relayed address, the number and its peer.
type ExpiredChannel struct {
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
	Relay  netip.AddrPort `json:"relay"`
	Number uint16         `json:"number"`
	Peer   netip.AddrPort `json:"peer"`
}

// PermissionsResult is the result of permissions.expire: the permissions
// it ended.
type PermissionsResult struct {
	Permissions []ExpiredPermission `json:"permissions"`
}

// ChannelsResult is the result of channels.expire: the channel bindings it
// ended.
type ChannelsResult struct {
	Channels []ExpiredChannel `json:"channels"`
}

// RotateResult is the result of nonces.rotate: the rotation's number.
type RotateResult struct {
	Rotation uint64 `json:"rotation"`
}

// ConnectionRequest is the request of connections.close: the client's
// address:port.
type ConnectionRequest struct {
	Client string `json:"client"`
}
