package control

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stunfault/stunfault/faults"
)

// Defaults of [HandlerOptions].
const (
	DefaultMaxFrameBytes = 1 << 20
	DefaultPingInterval  = 30 * time.Second
	DefaultPongWait      = 60 * time.Second
	// DefaultEventBuffer is how many events a subscription queues on the
	// server before it drops them (and says so with a lost event).
	DefaultEventBuffer = 1024
	// MaxEventBuffer bounds SubscribeRequest.Buffer: a full buffer holds
	// about 1 MB.
	MaxEventBuffer = 4096
	// MaxConnSubscriptions bounds the subscriptions of one connection;
	// beyond, subscribe fails with CodeLimitExceeded.
	MaxConnSubscriptions = 16
	// MaxSubscriptions bounds the subscriptions of all connections
	// together (at most about 64 MB of buffered events); beyond, subscribe
	// fails with CodeLimitExceeded.
	MaxSubscriptions = 64
)

// lostCheckInterval is how often an idle subscription looks for events the
// engine dropped, so a loss is reported even when no event follows it.
const lostCheckInterval = 100 * time.Millisecond

// closeGrace bounds, in total, the close frames Close sends, and then
// again its wait for the connections' goroutines.
const closeGrace = time.Second

// Backend is what the handler needs from the running server. The server
// implements it; tests use a fake around a real [faults.Engine]. Its
// methods are called concurrently.
type Backend interface {
	// Engine returns the rule engine the packet path consults.
	Engine() *faults.Engine
	// Clock returns the server's clock, read by clock.get; clock.advance
	// moves it when it is a *faults.ManualClock and refuses otherwise.
	Clock() faults.Clock
	// Allocations returns the live TURN allocations, oldest first.
	Allocations() []Allocation
	// ExpireAllocations ends the allocations sel selects as their clients'
	// Refresh with LIFETIME 0 would, and returns them once they are gone.
	// When none matches it returns an error wrapping [ErrUnknownAllocation].
	ExpireAllocations(ctx context.Context, sel AllocationSelector) ([]Allocation, error)
	// ExpirePermissions ends the permission for sel.Peer of the
	// allocations sel selects, as if it had timed out, and returns those it
	// ended. No allocation selected is an error wrapping
	// [ErrUnknownAllocation]; none with that permission, [ErrUnknownPermission].
	ExpirePermissions(ctx context.Context, sel PermissionSelector) ([]ExpiredPermission, error)
	// ExpireChannels ends the binding of sel.Channel of the allocations sel
	// selects, as if it had timed out, and returns those it ended. No
	// allocation selected is an error wrapping [ErrUnknownAllocation]; none
	// with that binding, [ErrUnknownChannel].
	ExpireChannels(ctx context.Context, sel ChannelSelector) ([]ExpiredChannel, error)
	// RotateNonces makes every client's next signed request get 438 with a
	// fresh NONCE, and returns the rotation's number.
	RotateNonces() uint64
	// CloseConnection closes the TCP or TLS connection of the client at
	// address:port; none is an error wrapping [ErrUnknownAllocation].
	CloseConnection(ctx context.Context, client string) error
	// Hello returns the server's version, seed and capabilities; the
	// handler fills in the protocol, ops, revision and scenario.
	Hello() Hello
	// Stats returns what only the server knows (listeners, allocations,
	// webhooks); the handler fills in the engine's part.
	Stats() Stats
	// SetWebhook changes a simulated webhook at runtime. For a name it
	// does not know it returns an error wrapping [webhook.ErrUnknownWebhook];
	// the handler answers it with unknown_webhook.
	SetWebhook(ctx context.Context, name string, s WebhookSettings) error
}

// HandlerOptions configures a [Handler]. The zero value serves loopback
// clients without a token.
type HandlerOptions struct {
	// Token, when not empty, is required on the WebSocket upgrade and on
	// every /api request: as "Authorization: Bearer TOKEN" or "?token=TOKEN".
	Token string
	// AllowedOrigins are browser Origins ("https://lab.example:8443")
	// allowed besides the server's own host. Requests without an Origin
	// header (not from a browser) are always allowed.
	AllowedOrigins []string
	// MaxFrameBytes bounds one incoming message (and an /api body). A
	// larger WebSocket message closes that connection. 0 means
	// DefaultMaxFrameBytes.
	MaxFrameBytes int64
	// PingInterval is how often the server pings an idle client, and
	// PongWait how long it waits for any frame before it drops the
	// connection as dead. 0 means DefaultPingInterval and DefaultPongWait.
	PingInterval time.Duration
	PongWait     time.Duration
	// Logger receives connection-level logs. Nil means silence.
	Logger *slog.Logger
}

// Handler serves the control protocol: GET /control upgrades to a WebSocket
// and POST /api/{op} answers one request. Mount it on both paths as they
// are (do not strip the prefix). Create it with NewHandler; the caller
// should call Close when the HTTP server stops, because net/http does not
// close hijacked connections. A Handler is safe for concurrent use.
type Handler struct {
	b       Backend
	opts    HandlerOptions
	log     *slog.Logger
	allowed map[string]bool
	up      websocket.Upgrader

	connsMu sync.Mutex
	conns   map[*conn]struct{}
	closed  bool
	wg      sync.WaitGroup // every connection goroutine
	subs    atomic.Int64   // subscriptions of every connection

	// forwardHook, when set (by tests), runs before a subscription
	// forwards each live event.
	forwardHook func()
}

// NewHandler returns a handler serving b. The caller should call Close when
// done.
func NewHandler(b Backend, opts HandlerOptions) *Handler {
	if opts.MaxFrameBytes <= 0 {
		opts.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PongWait <= 0 {
		opts.PongWait = DefaultPongWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		b:       b,
		opts:    opts,
		log:     opts.Logger,
		allowed: make(map[string]bool),
		conns:   make(map[*conn]struct{}),
	}
	for _, o := range opts.AllowedOrigins {
		h.allowed[normalizeOrigin(o)] = true
	}
	h.up = websocket.Upgrader{
		// The origin was checked before Upgrade, with a JSON answer.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h
}

// ServeHTTP serves GET /control and POST /api/{op}; any other path is 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/control":
		h.serveSocket(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		h.serveAPI(w, r, strings.TrimPrefix(r.URL.Path, "/api/"))
	default:
		writeError(w, http.StatusNotFound, &Error{Code: CodeUnknownOp, Message: "no such path: " + r.URL.Path})
	}
}

// Close closes every open control socket and waits for their goroutines.
// Every socket is first sent a "going away" close frame; the frames are
// written at the same time under one deadline, so Close takes at most
// about closeGrace however many peers have stopped reading, then closes
// the sockets, which ends their goroutines. Later upgrades are refused with
// 503. /api requests still work: they hold nothing open.
func (h *Handler) Close() {
	h.connsMu.Lock()
	h.closed = true
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.connsMu.Unlock()
	deadline := time.Now().Add(closeGrace)
	var said sync.WaitGroup
	for _, c := range conns {
		said.Add(1)
		go func() {
			defer said.Done()
			goAway(c.ws, deadline)
			c.close()
		}()
	}
	said.Wait() // bounded by deadline: a write waits no longer
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	wait := time.NewTimer(closeGrace)
	defer wait.Stop()
	select {
	case <-done:
	case <-wait.C:
		// Every socket is closed, so only an op stuck in the backend can
		// hold a goroutine here: say so rather than hang.
		h.log.Error("control goroutines still running after Close", "waited", closeGrace)
	}
}

// goAway sends ws a "going away" close frame, giving up at deadline.
func goAway(ws *websocket.Conn, deadline time.Time) {
	_ = ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseGoingAway, "server closing"), deadline)
}

// authorized checks the token, when one is required, in constant time.
func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	got := r.URL.Query().Get("token")
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			got = strings.TrimSpace(tok)
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

// originAllowed reports whether r may act: no Origin (not a browser), an
// allowed Origin, or one naming the host the request was sent to (an IP
// literal or localhost unless a token is required).
func (h *Handler) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false // "null" (sandboxed frames, file:) included
	}
	if h.allowed[normalizeOrigin(o)] {
		return true
	}
	// Same host. Without a token, only when the host is an IP literal or
	// localhost: a page on a DNS-rebinding name (evil.example resolving to
	// 127.0.0.1) would otherwise pass as same-origin.
	return strings.EqualFold(u.Host, r.Host) && (h.opts.Token != "" || literalHost(r.Host))
}

// literalHost reports whether a Host header names an IP address or
// localhost, with or without a port.
func literalHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// normalizeOrigin lowercases an origin and drops a trailing slash.
func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
}

// guard runs the checks shared by both endpoints and answers a refusal.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request) bool {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="stunfault"`)
		writeError(w, http.StatusUnauthorized, &Error{Code: CodeUnauthorized, Message: "missing or wrong token"})
		return false
	}
	if !h.originAllowed(r) {
		h.log.Info("refused cross-origin request", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		writeError(w, http.StatusForbidden, &Error{Code: CodeForbiddenOrigin,
			Message: "origin " + r.Header.Get("Origin") + " is not allowed (see [http].allowed_origins)"})
		return false
	}
	return true
}

// serveSocket upgrades r and serves the connection until it ends.
func (h *Handler) serveSocket(w http.ResponseWriter, r *http.Request) {
	if !h.guard(w, r) {
		return
	}
	h.connsMu.Lock()
	if h.closed {
		h.connsMu.Unlock()
		writeError(w, http.StatusServiceUnavailable, &Error{Code: CodeInternal, Message: "control handler closed"})
		return
	}
	h.wg.Add(1) // before Close can Wait: closed is false under connsMu
	h.connsMu.Unlock()
	defer h.wg.Done()

	ws, err := h.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	c := newConn(h, ws)
	h.connsMu.Lock()
	if h.closed {
		// Close ran between the upgrade and here: say goodbye as it would.
		h.connsMu.Unlock()
		goAway(ws, time.Now().Add(closeGrace))
		_ = ws.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.connsMu.Unlock()
	h.log.Debug("control client connected", "remote", r.RemoteAddr)

	c.serve()

	h.connsMu.Lock()
	delete(h.conns, c)
	h.connsMu.Unlock()
	h.log.Debug("control client gone", "remote", r.RemoteAddr)
}

// serveAPI answers POST /api/{op}: the body is the request, the answer the
// reply, with a status that follows the error code.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, op string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, &Error{Code: CodeBadRequest, Message: "use POST with a JSON body"})
		return
	}
	if !h.guard(w, r) {
		return
	}
	// A browser can POST cross-site without a preflight only with a
	// "simple" content type; requiring JSON forces the preflight, which
	// this handler never answers.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		e := &Error{Code: CodeUnsupportedMediaType, Message: "Content-Type must be application/json"}
		writeError(w, e.HTTPStatus(), e)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxFrameBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e := &Error{Code: CodeTooLarge, Message: "request body larger than " + strconv.FormatInt(h.opts.MaxFrameBytes, 10) + " bytes"}
			writeError(w, e.HTTPStatus(), e)
			return
		}
		writeError(w, http.StatusBadRequest, &Error{Code: CodeBadRequest, Message: "reading body: " + err.Error()})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	rep, _ := h.handle(r.Context(), nil, body, op)
	status := http.StatusOK
	if rep.Error != nil {
		status = rep.Error.HTTPStatus()
	}
	writeJSON(w, status, rep)
}

func writeError(w http.ResponseWriter, status int, e *Error) {
	writeJSON(w, status, Reply{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
