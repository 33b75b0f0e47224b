package trace

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"time"
)

// Page is one read of the trace, as GET /trace answers it: the messages
// after a Seq and the webhook requests of the same period.
type Page struct {
	// Messages are the messages after the Seq asked for, oldest first.
	Messages []Record `json:"messages"`
	// Webhooks are the webhook requests held, pending, or that ended since
	// the first of Messages was seen, by ID.
	Webhooks []Span `json:"webhooks"`
	// LastSeq is the Seq of the latest message recorded: ask for the
	// messages since it next time.
	LastSeq uint64 `json:"last_seq"`
	// Size is the ring's size ([server].trace_size).
	Size int `json:"size"`
	// Time is when the page was read, on the server's clock; PeerLegs are
	// the peer-leg counts of every relay open then.
	Time     time.Time `json:"time"`
	PeerLegs []PeerLeg `json:"peer_legs"`
}

// Span is one request to a simulated webhook, on the trace's timeline.
type Span struct {
	// ID numbers the requests across every webhook, in arrival order.
	ID uint64 `json:"id"`
	// Webhook is the webhook's name.
	Webhook string `json:"webhook"`
	// Start is when the request came; End when it was answered (sync) or
	// its work finished (async), zero while it is held or pending.
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
	// Mode is "sync" (the request is held for the latency) or "async" (202
	// at once, the work pending for the latency).
	Mode string `json:"mode"`
	// Held reports a sync request still held open; Pending an async
	// request whose work is still in progress.
	Held    bool `json:"held,omitempty"`
	Pending bool `json:"pending,omitempty"`
	// Status is the status answered (0 while held).
	Status int `json:"status,omitempty"`
	// BodyBytes and HeaderBytes are the request's body and header sizes.
	BodyBytes   int `json:"body_bytes"`
	HeaderBytes int `json:"header_bytes"`
	// Rules are the IDs of the rules with a match on this webhook that
	// fired, among Messages, while the request counted for them.
	Rules []string `json:"rules,omitempty"`
}

// recordJSON is a Record as JSON carries it: names, not numbers.
type recordJSON struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	Listener  string         `json:"listener,omitempty"`
	Local     netip.AddrPort `json:"local"`
	Client    netip.AddrPort `json:"client"`
	Transport string         `json:"transport"`
	Direction string         `json:"direction"`
	Kind      string         `json:"kind"`
	Method    string         `json:"method,omitempty"`
	Class     string         `json:"class,omitempty"`
	Channel   uint16         `json:"channel,omitempty"`
	TxID      string         `json:"txid,omitempty"`
	Size      int            `json:"size"`
	Count     int            `json:"count,omitempty"`
	Username  string         `json:"username,omitempty"`
	Decision  decisionJSON   `json:"decision"`
	Data      []byte         `json:"data,omitempty"`
	Sent      []byte         `json:"sent,omitempty"`
}

type decisionJSON struct {
	Action     string `json:"action"`
	Rule       string `json:"rule,omitempty"`
	Guard      bool   `json:"guard,omitempty"`
	Code       int    `json:"code,omitempty"`
	JournalSeq uint64 `json:"journal_seq,omitempty"`
}

// MarshalJSON writes the record with its fields by name ("binding",
// "request", "in"), the transaction ID in hex, and the bytes, when read, in
// base64.
func (r Record) MarshalJSON() ([]byte, error) {
	j := recordJSON{
		Seq: r.Seq, Time: r.Time, Listener: r.Listener, Local: r.Local, Client: r.Client,
		Transport: r.Transport.String(), Direction: r.Dir.String(), Kind: r.Kind.String(),
		Channel: r.Channel, Size: r.Size, Username: r.Username,
		Decision: decisionJSON{Action: r.Decision.Action.String(), Rule: r.Decision.Rule,
			Guard: r.Decision.Guard, Code: r.Decision.Code, JournalSeq: r.Decision.JournalSeq},
		Data: r.Data, Sent: r.Sent,
	}
	if r.Kind == RelaySummary {
		j.Count = r.Count
		if r.Channel == 0 {
			j.Method, j.Class = r.Method.String(), r.Class.String()
		}
	}
	if r.Kind == STUN {
		j.Method, j.Class, j.TxID = r.Method.String(), r.Class.String(), hex.EncodeToString(r.TxID[:])
	}
	return json.Marshal(j)
}
