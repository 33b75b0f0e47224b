package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/faults"
)

// DefaultURL is where stunfault's control socket listens by default.
const DefaultURL = "ws://127.0.0.1:8478/control"

// ErrClosed is returned by the calls of a [Client] whose connection has
// ended (by Close, or because the server went away).
var ErrClosed = errors.New("control: connection closed")

// DialOptions configures [Dial]. A nil *DialOptions is the zero value.
type DialOptions struct {
	// Token is sent as "Authorization: Bearer TOKEN" when not empty.
	Token string
	// Header holds extra handshake headers (Origin, for instance).
	Header http.Header
}

// Client is a connection to a control socket. Its methods are safe for
// concurrent use: requests from many goroutines share the connection and
// each gets its own reply. Create it with Dial; the caller should call
// Close when done.
type Client struct {
	ws      *websocket.Conn
	writeMu sync.Mutex
	nextID  atomic.Uint64

	mu      sync.Mutex
	pending map[uint64]*call
	subs    map[uint64]*Subscription   // live ones, by id; nil once the read loop ended
	all     map[*Subscription]struct{} // not yet closed by their owner
	err     error                      // why the connection ended, once it has

	done     chan struct{} // closed when the read loop has ended
	closeErr error
	once     sync.Once
}

// call is one request waiting for its reply.
type call struct {
	ch chan Reply
	// onReply, when set, runs in the read loop before the reply is handed
	// over, so a subscription is routed before its first event arrives.
	onReply func(Reply)
}

// Dial connects to the control socket at rawURL ("ws://host:port/control";
// http:// and https:// are accepted for ws:// and wss://, and a URL without
// a path gets /control). A refused handshake returns an error wrapping the
// server's *Error (code unauthorized or forbidden_origin) when it sent one.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Client, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := socketURL(rawURL)
	if err != nil {
		return nil, err
	}
	h := opts.Header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	if opts.Token != "" {
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment}
	ws, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			var rep Reply
			if json.NewDecoder(resp.Body).Decode(&rep) == nil && rep.Error != nil {
				return nil, fmt.Errorf("control: dial %s: %s: %w", u, resp.Status, rep.Error)
			}
			return nil, fmt.Errorf("control: dial %s: %s: %w", u, resp.Status, err)
		}
		return nil, fmt.Errorf("control: dial %s: %w", u, err)
	}
	c := &Client{
		ws:      ws,
		pending: make(map[uint64]*call),
		subs:    make(map[uint64]*Subscription),
		all:     make(map[*Subscription]struct{}),
		done:    make(chan struct{}),
	}
	go c.read()
	return c, nil
}

// socketURL turns what a user typed into a WebSocket URL.
func socketURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("control: bad URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("control: bad URL %q: want ws://HOST:PORT/control", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/control"
	}
	return u.String(), nil
}

// read is the client's only reader: it hands replies to their callers and
// events to their subscriptions until the connection ends.
func (c *Client) read() {
	defer close(c.done)
	var err error
	for {
		var data []byte
		if _, data, err = c.ws.ReadMessage(); err != nil {
			break
		}
		var head struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(data, &head) != nil {
			continue // not ours to judge: the server only sends objects
		}
		if head.Event != "" {
			var ev Event
			if json.Unmarshal(data, &ev) == nil {
				c.mu.Lock()
				s := c.subs[ev.Subscription]
				c.mu.Unlock()
				if s != nil {
					s.deliver(ev)
				}
			}
			continue
		}
		var rep Reply
		if json.Unmarshal(data, &rep) != nil || rep.ID == nil {
			continue // an error about a message with no usable id: not ours
		}
		c.mu.Lock()
		cl := c.pending[*rep.ID]
		delete(c.pending, *rep.ID)
		c.mu.Unlock()
		if cl == nil {
			continue // its caller gave up
		}
		if cl.onReply != nil {
			cl.onReply(rep)
		}
		cl.ch <- rep
	}

	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrClosed, err)
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for _, s := range subs {
		s.end()
	}
	_ = c.ws.Close()
}

// Close closes the connection (with a normal close frame), ends every
// subscription and waits for the client's goroutine. Calls in flight fail
// with ErrClosed. It is safe to call more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		if err := c.ws.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.closeErr = fmt.Errorf("control: close: %w", err)
		}
		<-c.done
		c.mu.Lock()
		all := c.all
		c.all = nil
		c.mu.Unlock()
		for s := range all {
			s.stop()
		}
	})
	return c.closeErr
}

// Done returns a channel that is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (wrapping ErrClosed), or nil while
// it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Call sends one request and decodes the reply's result into res (when not
// nil). req is the op's request type (nil for ops without parameters). It
// returns the revision of a mutating reply (0 otherwise). A failed op
// returns a *Error; a connection that ended returns an error wrapping
// ErrClosed. The typed methods are built on Call; it is exported for ops
// newer than this client.
func (c *Client) Call(ctx context.Context, op string, req, res any) (uint64, error) {
	return c.call(ctx, op, req, res, nil)
}

func (c *Client) call(ctx context.Context, op string, req, res any, onReply func(Reply)) (uint64, error) {
	id := c.nextID.Add(1)
	msg, err := encodeRequest(id, op, req)
	if err != nil {
		return 0, err
	}
	cl := &call{ch: make(chan Reply, 1), onReply: onReply}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	c.pending[id] = cl
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	c.writeMu.Lock()
	dl, _ := ctx.Deadline()
	_ = c.ws.SetWriteDeadline(dl)
	err = c.ws.WriteMessage(websocket.TextMessage, msg)
	c.writeMu.Unlock()
	if err != nil {
		forget()
		if e := c.Err(); e != nil {
			return 0, e
		}
		return 0, fmt.Errorf("control: %s: %w", op, err)
	}

	var rep Reply
	select {
	case rep = <-cl.ch:
	case <-ctx.Done():
		forget()
		return 0, fmt.Errorf("control: %s: %w", op, ctx.Err())
	case <-c.done:
		select { // the reply may have been the last thing read
		case rep = <-cl.ch:
		default:
			return 0, c.Err()
		}
	}
	var rev uint64
	if rep.Revision != nil {
		rev = *rep.Revision
	}
	if !rep.OK {
		if rep.Error == nil {
			return rev, &Error{Code: CodeInternal, Message: "reply with neither ok nor error"}
		}
		return rev, rep.Error
	}
	if res != nil && len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, res); err != nil {
			return rev, fmt.Errorf("control: %s: decoding result: %w", op, err)
		}
	}
	return rev, nil
}

// encodeRequest writes {"id":ID,"op":OP, ...req's fields}.
func encodeRequest(id uint64, op string, req any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"id":`)
	buf.WriteString(strconv.FormatUint(id, 10))
	buf.WriteString(`,"op":`)
	opJSON, _ := json.Marshal(op)
	buf.Write(opJSON)
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("control: %s: encoding request: %w", op, err)
		}
		b = bytes.TrimSpace(b)
		if len(b) < 2 || b[0] != '{' {
			return nil, fmt.Errorf("control: %s: request must encode as a JSON object", op)
		}
		if inner := bytes.TrimSpace(b[1 : len(b)-1]); len(inner) > 0 {
			buf.WriteByte(',')
			buf.Write(inner)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// Hello asks the server who it is.
func (c *Client) Hello(ctx context.Context) (Hello, error) {
	var res Hello
	_, err := c.Call(ctx, OpHello, nil, &res)
	return res, err
}

// ListRules returns every rule with its counters, in evaluation order.
func (c *Client) ListRules(ctx context.Context) ([]faults.RuleStatus, error) {
	return c.ListRulesByLabels(ctx, nil)
}

// ListRulesByLabels returns the rules that have all the given labels.
func (c *Client) ListRulesByLabels(ctx context.Context, labels map[string]string) ([]faults.RuleStatus, error) {
	var res RulesResult
	_, err := c.Call(ctx, OpRulesList, ListRulesRequest{Labels: labels}, &res)
	return res.Rules, err
}

// GetRule returns the rule with the given ID and its counters.
func (c *Client) GetRule(ctx context.Context, id string) (faults.RuleStatus, error) {
	var res faults.RuleStatus
	_, err := c.Call(ctx, OpRulesGet, RuleIDRequest{RuleID: id}, &res)
	return res, err
}

// AddRule adds r, or replaces the rule with its ID. It returns the rule as
// stored (its ID filled in) and the revision the packet path now reads.
func (c *Client) AddRule(ctx context.Context, r faults.Rule) (faults.Rule, uint64, error) {
	var res RuleResult
	rev, err := c.Call(ctx, OpRulesAdd, AddRuleRequest{Rule: r}, &res)
	return res.Rule, rev, err
}

// AddRules adds rules as one change with one revision: a rule with a known
// ID replaces that rule, the others are new. It is all or nothing: when one
// rule is invalid nothing changes and the *Error lists every problem in its
// Details ("rules[2].action.code").
func (c *Client) AddRules(ctx context.Context, rules []faults.Rule) (AddRulesResult, uint64, error) {
	if rules == nil {
		rules = []faults.Rule{}
	}
	var res AddRulesResult
	rev, err := c.Call(ctx, OpRulesAdd, AddRuleRequest{Rules: rules}, &res)
	return res, rev, err
}

// UpdateRule applies a JSON merge patch (RFC 7396) to the rule with the
// given ID. patch is anything that marshals to a JSON object: a
// json.RawMessage, a map, a struct. The rule's counters restart.
func (c *Client) UpdateRule(ctx context.Context, id string, patch any) (faults.Rule, uint64, error) {
	raw, ok := patch.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(patch)
		if err != nil {
			return faults.Rule{}, 0, fmt.Errorf("control: encoding patch: %w", err)
		}
		raw = b
	}
	var res RuleResult
	rev, err := c.Call(ctx, OpRulesUpdate, UpdateRuleRequest{RuleID: id, Patch: raw}, &res)
	return res.Rule, rev, err
}

// RemoveRule removes the rule with the given ID.
func (c *Client) RemoveRule(ctx context.Context, id string) (uint64, error) {
	return c.Call(ctx, OpRulesRemove, RemoveRulesRequest{RuleID: id}, nil)
}

// RemoveRulesByLabels removes every rule that has all the given labels and
// returns how many went.
func (c *Client) RemoveRulesByLabels(ctx context.Context, labels map[string]string) (int, uint64, error) {
	var res RemovedResult
	rev, err := c.Call(ctx, OpRulesRemove, RemoveRulesRequest{Labels: labels}, &res)
	return res.Removed, rev, err
}

// EnableRule switches the rule with the given ID on, keeping its counters.
func (c *Client) EnableRule(ctx context.Context, id string) (uint64, error) {
	return c.Call(ctx, OpRulesEnable, RuleIDRequest{RuleID: id}, nil)
}

// DisableRule switches the rule with the given ID off, keeping its
// counters.
func (c *Client) DisableRule(ctx context.Context, id string) (uint64, error) {
	return c.Call(ctx, OpRulesDisable, RuleIDRequest{RuleID: id}, nil)
}

// ReplaceRules swaps the whole rule set for rules in one revision. When
// one rule is invalid nothing changes and the *Error lists every problem.
func (c *Client) ReplaceRules(ctx context.Context, rules []faults.Rule) (ReplaceResult, uint64, error) {
	if rules == nil {
		rules = []faults.Rule{}
	}
	var res ReplaceResult
	rev, err := c.Call(ctx, OpRulesReplace, ReplaceRulesRequest{Rules: rules}, &res)
	return res, rev, err
}

// ClearRules removes every rule and returns how many went.
func (c *Client) ClearRules(ctx context.Context) (int, uint64, error) {
	var res RemovedResult
	rev, err := c.Call(ctx, OpRulesClear, nil, &res)
	return res.Removed, rev, err
}

// ParseRules reads rules from text on the server, as `stunfault rules add`
// reads a file (TOML [[rules]] tables or JSON), and returns them without
// adding them. A problem is an *Error with code invalid_rule whose Line
// and Details name each line at fault.
func (c *Client) ParseRules(ctx context.Context, text string) ([]faults.Rule, error) {
	var res ParseRulesResult
	_, err := c.Call(ctx, OpRulesParse, ParseRulesRequest{Text: text}, &res)
	return res.Rules, err
}

// Scenarios returns the scenario names, the active one and, for a timed
// scenario, its active step and the time to the next.
func (c *Client) Scenarios(ctx context.Context) (ScenariosResult, error) {
	var res ScenariosResult
	_, err := c.Call(ctx, OpScenariosList, nil, &res)
	return res, err
}

// LoadScenarios adds scenarios to the server's, replacing those of the
// same names, as one change: all are validated first, and on any error none
// is loaded. It returns the new revision and what it did.
func (c *Client) LoadScenarios(ctx context.Context, scenarios map[string]faults.Scenario) (uint64, ScenariosLoadResult, error) {
	var res ScenariosLoadResult
	rev, err := c.Call(ctx, OpScenariosLoad, ScenariosLoadRequest{Scenarios: scenarios}, &res)
	return rev, res, err
}

// ActivateScenario replaces the rules with the named scenario's (a timed
// one's step 0, the next steps following on the server's clock).
func (c *Client) ActivateScenario(ctx context.Context, name string) (uint64, error) {
	return c.Call(ctx, OpScenariosActivate, ScenarioRequest{Name: name}, nil)
}

// Machines returns every state machine's state.
func (c *Client) Machines(ctx context.Context) (map[string]string, error) {
	var res MachinesResult
	_, err := c.Call(ctx, OpMachinesList, nil, &res)
	return res.Machines, err
}

// SetMachineState moves a state machine to state.
func (c *Client) SetMachineState(ctx context.Context, machine, state string) (uint64, error) {
	return c.Call(ctx, OpMachinesSetState, MachineStateRequest{Machine: machine, State: state}, nil)
}

// QueryJournal returns the journal entries q selects, oldest first.
func (c *Client) QueryJournal(ctx context.Context, q faults.Query) ([]faults.Entry, error) {
	var res EntriesResult
	_, err := c.Call(ctx, OpJournalQuery, JournalRequest{Query: q}, &res)
	return res.Entries, err
}

// CountJournal returns how many journal entries q selects.
func (c *Client) CountJournal(ctx context.Context, q faults.Query) (int, error) {
	var res CountResult
	_, err := c.Call(ctx, OpJournalCount, JournalRequest{Query: q}, &res)
	return res.Count, err
}

// VerifyJournal checks that exactly expected journal entries match q; on a
// mismatch the result holds the near misses. A mismatch is not an error:
// check VerifyResult.Match.
func (c *Client) VerifyJournal(ctx context.Context, q faults.Query, expected int) (VerifyResult, error) {
	var res VerifyResult
	_, err := c.Call(ctx, OpJournalVerify, VerifyRequest{Query: q, Expected: expected}, &res)
	return res, err
}

// ClearJournal drops every journal entry and returns how many there were.
func (c *Client) ClearJournal(ctx context.Context) (int, uint64, error) {
	var res CountResult
	rev, err := c.Call(ctx, OpJournalClear, nil, &res)
	return res.Count, rev, err
}

// Stats returns the server's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var res Stats
	_, err := c.Call(ctx, OpStatsGet, nil, &res)
	return res, err
}

// Reset clears the given scopes (ScopeRules, ScopeJournal, ScopeCounters,
// ScopeMachines), or all of them when none is given.
func (c *Client) Reset(ctx context.Context, scopes ...string) (uint64, error) {
	return c.Call(ctx, OpReset, ResetRequest{Scope: scopes}, nil)
}

// SetWebhook changes a simulated webhook at runtime. An unknown name is a
// *Error with code unknown_webhook.
func (c *Client) SetWebhook(ctx context.Context, name string, s WebhookSettings) (uint64, error) {
	return c.Call(ctx, OpWebhookSet, WebhookRequest{Name: name, WebhookSettings: s}, nil)
}

// Clock returns the server's time, and whether its clock is manual.
func (c *Client) Clock(ctx context.Context) (ClockResult, error) {
	var res ClockResult
	_, err := c.Call(ctx, OpClockGet, nil, &res)
	return res, err
}

// AdvanceClock moves the server's manual clock on by d and returns once the
// timers that became due have run: rules with for have expired, a timed
// scenario is in its new step, held webhook requests are answered. A
// server on the system clock answers a *Error with code clock_not_manual.
func (c *Client) AdvanceClock(ctx context.Context, d time.Duration) (ClockResult, error) {
	var res ClockResult
	_, err := c.Call(ctx, OpClockAdvance, ClockRequest{By: faults.Duration(d)}, &res)
	return res, err
}

// Allocations returns the server's live TURN allocations, oldest first.
func (c *Client) Allocations(ctx context.Context) ([]Allocation, error) {
	var res AllocationsResult
	_, err := c.Call(ctx, OpAllocationsList, nil, &res)
	return res.Allocations, err
}

// ExpireAllocations ends the allocations sel selects (one client's, one
// user's, or all) as a timed-out allocation ends: the client's next Refresh
// gets 437 and its relayed data stops. It returns them once pion has
// deleted them. No match is a *Error with code unknown_allocation.
func (c *Client) ExpireAllocations(ctx context.Context, sel AllocationSelector) ([]Allocation, error) {
	var res AllocationsResult
	_, err := c.Call(ctx, OpAllocationsExpire, sel, &res)
	return res.Allocations, err
}

// ExpirePermissions ends the permission for sel.Peer of the allocations sel
// selects as a timed-out permission ends: data between the relay and the
// peer stops both ways until a CreatePermission for it succeeds. It returns
// the permissions it ended. No match is a *Error with code
// unknown_allocation (field peer when the allocations exist).
func (c *Client) ExpirePermissions(ctx context.Context, sel PermissionSelector) ([]ExpiredPermission, error) {
	var res PermissionsResult
	_, err := c.Call(ctx, OpPermissionsExpire, sel, &res)
	return res.Permissions, err
}

// ExpireChannels ends the binding of sel.Channel of the allocations sel
// selects as a timed-out binding ends: the client's ChannelData on it is
// dropped and the peer's data comes as Data indications, until a
// ChannelBind of the number to the same peer succeeds. It returns the
// bindings it ended. No match is a *Error with code unknown_allocation
// (field channel when the allocations exist).
func (c *Client) ExpireChannels(ctx context.Context, sel ChannelSelector) ([]ExpiredChannel, error) {
	var res ChannelsResult
	_, err := c.Call(ctx, OpChannelsExpire, sel, &res)
	return res.Channels, err
}

// RotateNonces makes every client's next signed request get 438 Stale
// Nonce with a fresh NONCE, which its retry then uses; it returns the
// rotation's number.
func (c *Client) RotateNonces(ctx context.Context) (uint64, error) {
	var res RotateResult
	_, err := c.Call(ctx, OpNoncesRotate, nil, &res)
	return res.Rotation, err
}

// CloseConnection closes the TCP or TLS connection of the client at
// address:port. None is a *Error with code unknown_allocation.
func (c *Client) CloseConnection(ctx context.Context, client string) error {
	_, err := c.Call(ctx, OpConnectionsClose, ConnectionRequest{Client: client}, nil)
	return err
}

// Subscription delivers the events of one subscribe. Its methods are safe
// for concurrent use.
type Subscription struct {
	// C delivers the events, in seq order. A lost event (Count set) stands
	// for events dropped because a buffer was full, on the server or in
	// this client. C is closed when the subscription or the client closes
	// (after the events already received, when the server went away).
	C <-chan Event
	// Result is the server's answer to the subscribe.
	Result SubscribeResult

	c    *Client
	ch   chan Event
	lost atomic.Uint64

	mu     sync.Mutex
	queue  []Event // received, not yet on C
	max    int     // bound of queue
	owed   uint64  // dropped here, not yet reported on C
	ended  bool    // no more events will arrive
	wake   chan struct{}
	quit   chan struct{} // closed to stop at once
	exited chan struct{} // closed when pump returns
	once   sync.Once
}

// Subscribe starts a subscription. req.Buffer (or DefaultEventBuffer)
// bounds the events queued on the server and again in the client: the
// client's reader never blocks on a slow consumer of C, it drops and
// reports a lost event instead. The caller should call Close when done.
func (c *Client) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	n := req.Buffer
	if n <= 0 {
		n = DefaultEventBuffer
	}
	ch := make(chan Event)
	s := &Subscription{
		C: ch, ch: ch, c: c, max: n,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), exited: make(chan struct{}),
	}
	registered := make(chan struct{})
	register := func(rep Reply) {
		if !rep.OK || json.Unmarshal(rep.Result, &s.Result) != nil {
			return
		}
		defer close(registered)
		c.mu.Lock()
		if c.subs != nil {
			c.subs[s.Result.Subscription] = s
			c.all[s] = struct{}{}
		}
		c.mu.Unlock()
		go s.pump()
	}
	if _, err := c.call(ctx, OpSubscribe, req, nil, register); err != nil {
		select {
		case <-registered: // registered, then the wait failed: undo
			c.mu.Lock()
			delete(c.subs, s.Result.Subscription)
			delete(c.all, s)
			c.mu.Unlock()
			s.stop()
		default: // not registered, or registering now: Close stops it
		}
		return nil, err
	}
	return s, nil
}

// deliver queues ev for C without blocking. Only the read loop calls it.
func (s *Subscription) deliver(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	switch {
	case ev.Event == EventLost:
		s.lost.Add(ev.Count)
		s.owed += ev.Count
	case len(s.queue) >= s.max:
		s.lost.Add(1)
		s.owed++
	default:
		if s.owed > 0 { // report a loss where it happened
			s.queue = append(s.queue, Event{Event: EventLost, Subscription: s.Result.Subscription, Count: s.owed})
			s.owed = 0
		}
		s.queue = append(s.queue, ev)
	}
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves queued events to C until the subscription ends (then C is
// closed once the queue is drained) or stops (at once).
func (s *Subscription) pump() {
	defer close(s.exited)
	defer close(s.ch)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && s.owed == 0 && !s.ended {
			s.mu.Unlock()
			select {
			case <-s.wake:
			case <-s.quit:
				return
			}
			s.mu.Lock()
		}
		var ev Event
		switch {
		case len(s.queue) > 0:
			ev = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
		case s.owed > 0:
			ev = Event{Event: EventLost, Subscription: s.Result.Subscription, Count: s.owed}
			s.owed = 0
		default: // ended and drained
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-s.quit:
			return
		}
	}
}

// end says no more events will arrive: C closes once the queue is drained.
func (s *Subscription) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.signal()
}

// stop ends the subscription at once, dropping queued events, and waits for
// the pump.
func (s *Subscription) stop() {
	s.end()
	s.once.Do(func() { close(s.quit) })
	<-s.exited
}

// Lost returns how many events this subscription lost so far, on the
// server or in the client.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Unsubscribe ends the subscription on the server and closes C, dropping
// events not yet read; no event follows. On a closed client it only closes
// C.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	_, open := c.subs[s.Result.Subscription]
	if open {
		delete(c.subs, s.Result.Subscription)
	}
	delete(c.all, s)
	c.mu.Unlock()
	var err error
	if open {
		_, err = c.Call(ctx, OpUnsubscribe, UnsubscribeRequest{Subscription: s.Result.Subscription}, nil)
		if errors.Is(err, ErrClosed) {
			err = nil
		}
	}
	s.stop()
	return err
}

// Close is Unsubscribe with a five-second bound. It is safe to call more
// than once.
func (s *Subscription) Close() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Unsubscribe(ctx)
}

// isCode reports whether err holds a *Error with the given code.
func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsNotFound reports whether err is a *Error with code not_found: no rule
// (or subscription) with that id.
func IsNotFound(err error) bool { return isCode(err, CodeNotFound) }

// ErrorCode returns the code of a *Error in err's chain, or "" when there
// is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
