package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/internal/pionlog"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/dashboard"
	"github.com/stunfault/stunfault/server/internal/stunframe"
	"github.com/stunfault/stunfault/server/trace"
	"github.com/stunfault/stunfault/server/webhook"
)

// ErrServerClosed is returned by Start on a Server that was closed.
var ErrServerClosed = errors.New("server: closed")

// ErrStarted is returned by a second call to Start.
var ErrStarted = errors.New("server: already started")

// closeGrace is how long, in total, Close gives clients to be told the
// server is going (see Close).
const closeGrace = time.Second

// closeWait bounds how long Close waits for pion's read loops to notice their
// sockets are closed. They exit within microseconds; the bound only keeps a
// bug from turning into a hang.
const closeWait = 5 * time.Second

// Server is a running stunfault: pion's STUN/TURN server on the configured
// listeners, plus the HTTP side. Create it with New, bind it with Start, and
// release it with Close. Its methods are safe for concurrent use.
type Server struct {
	cfg  config.Config
	log  *slog.Logger
	clk  faults.Clock
	seed uint64
	auth *authenticator
	eng  *faults.Engine
	ic   *interceptor
	hub  *webhook.Hub
	ctl  *control.Handler
	dash *dashboard.Handler

	latency     *webhookLatency // the webhook latency histogram of /metrics, fed by hub
	captureLost atomic.Uint64   // messages live captures missed (capture.go)
	traceLost   atomic.Uint64   // messages GET /trace followers missed (trace.go)

	mu        sync.Mutex
	started   bool
	closed    bool
	closeDone chan struct{} // closed when the first Close returns
	turn      *turn.Server
	socks     *boundSockets
	tcp       []*trackingListener
	guards    []*guardListener // beneath tcp, one each
	guarded   []guarded        // every listener's guard, for /healthz
	udp       []udpListener    // each udp listener's read loops, for stats
	allocs    *allocWatch
	http      *http.Server
	httpLn    net.Listener
	loops     sync.WaitGroup // pion's read loops, see track.go
	serving   sync.WaitGroup // our own goroutines
	certDir   string         // generated certificates of tls listeners (tls.go)
	supplied  *options       // caller-supplied sockets (sockets.go)
}

// New checks cfg and returns a Server that is not yet listening. It binds
// nothing: call Start. The caller should call Close when done.
func New(cfg config.Config, opts ...Option) (*Server, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateWith(cfg, &o); err != nil {
		return nil, fmt.Errorf("server: invalid config: %w", err)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case o.clock != nil:
	case cfg.Server.Clock == config.ClockManual:
		o.clock = faults.NewManualClock(time.Now())
	default:
		o.clock = faults.SystemClock{}
	}
	seed := cfg.Server.Seed
	if o.seedSet {
		seed = o.seed
	}
	if seed == 0 {
		seed = rand.Uint64N(1<<53) + 1 // non-zero, and exact in JSON
	}
	s := &Server{
		cfg:      cfg.Clone(), // the caller may go on changing its own slices and maps
		log:      o.logger,
		clk:      o.clock,
		seed:     seed,
		supplied: &o,

		closeDone: make(chan struct{}),
		allocs:    newAllocWatch(),
	}
	s.auth = newAuthenticator(cfg, s.clk, s.log.With("component", "auth"))
	s.latency = newWebhookLatency(slices.Collect(maps.Keys(cfg.Webhooks)))
	s.hub = webhook.New(cfg.Webhooks, webhook.Options{
		Clock:   s.clk,
		Seed:    seed,
		Logger:  s.log.With("component", "webhook"),
		Observe: s.latency.observe,
	})
	delays := newDelayQueue(s.clk)
	allocs := newAllocTable(relayTimes{cfg.Relay.AllocationLifetime.D(), cfg.Relay.PermissionLifetime.D()},
		nil, s.auth, cfg.Server.Realm)
	s.eng = faults.NewEngine(faults.EngineOptions{
		Allocations: allocs,
		Holder:      delays,
		Clock:       s.clk,
		Seed:        seed,
		JournalSize: cfg.Server.JournalSize,
		Signals:     s.hub,
	})
	if err := s.eng.SetScenarios(cfg.Scenarios); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if _, err := s.eng.Replace(cfg.Rules); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.ctl = control.NewHandler(controlBackend{s}, control.HandlerOptions{
		Token:          cfg.HTTP.Token,
		AllowedOrigins: cfg.HTTP.AllowedOrigins,
		Logger:         s.log.With("component", "control"),
	})
	s.dash = s.newDashboard()
	s.ic = &interceptor{
		engine:   s.eng,
		guard:    newRelayGuard(cfg, s.auth, s.log.With("component", "relay")),
		auth:     s.auth,
		nonces:   &nonceSource{conn: newNonceConn()},
		realm:    cfg.Server.Realm,
		software: cfg.Server.Software,
		clock:    s.clk,
		log:      s.log.With("component", "intercept"),
		delays:   delays,
		allocs:   allocs,
		trace:    trace.New(trace.Options{Size: cfg.Server.TraceSize, CaptureBytes: cfg.Server.CaptureBytes, Clock: s.clk}),
	}
	s.ic.allocs.nonces = s.ic.nonces
	s.ic.rotation = &nonceRotation{nonces: s.ic.nonces}
	return s, nil
}

// Start binds every configured socket (STUN/TURN over UDP and TCP, and the
// HTTP side) before it returns, then serves in the background. When any
// socket cannot be bound, Start releases the ones it bound and returns the
// error (wrapping syscall.EADDRINUSE for "address in use"). ctx bounds the
// start-up only; it is not kept. Start may be called once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrServerClosed
	case s.started:
		return ErrStarted
	}

	defer func() {
		if !s.started {
			s.removeCertDir()
		}
	}()
	socks, err := bindListeners(ctx, s.cfg.Listen, s.cfg.Server.UDPReadLoops(), s.makeCertDir)
	if err != nil {
		return err
	}
	socks.addCallerSockets(s.supplied)
	var lc net.ListenConfig
	httpLn, err := lc.Listen(ctx, "tcp", config.BindAddress(s.cfg.HTTP.Address))
	if err != nil {
		return errors.Join(fmt.Errorf("server: http.address: %w", err), socks.close())
	}

	s.ic.guard.setOwn(socks, httpLn)
	turnSrv, err := s.startTURN(socks)
	if err != nil {
		return errors.Join(err, socks.close(), httpLn.Close())
	}

	s.turn, s.socks, s.httpLn = turnSrv, socks, httpLn
	s.http = &http.Server{
		Handler:           bodyDeadline(s.handler(), s.cfg.HTTP.ReadTimeout.D()),
		ReadHeaderTimeout: s.cfg.HTTP.ReadTimeout.D(),
		IdleTimeout:       s.cfg.HTTP.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.started = true
	for _, l := range socks.addrs {
		s.log.Info("listening", "transport", l.Transport, "address", l.Addr.String())
	}
	s.log.Info("http listening", "address", httpLn.Addr().String(), "seed", s.seed)
	return nil
}

// inboundMTU is the size of the buffer pion reads each message into, one per
// read loop (a UDP listener's, and every TCP connection's). pion's default
// of 1600 cuts a larger UDP datagram at the socket read, so it fails to
// parse and vanishes, and on TCP it closes the connection. This is one
// more than the largest STUN message (a 20-byte header and a 65535-byte
// body; a UDP datagram is at most 65507 bytes): pion skips a read that
// fills its buffer, taking it as cut short.
const inboundMTU = stunframe.MaxFrame + 1

// startTURN hands the bound sockets to pion.
func (s *Server) startTURN(socks *boundSockets) (*turn.Server, error) {
	// Each listener gets its own relay generator (it holds state); the
	// permission handler only reads its prefixes, so one serves them all.
	perm, err := newPermissionHandler(s.cfg.Relay.AllowPeers, s.log.With("component", "relay"))
	if err != nil {
		return nil, err
	}
	var pcs []turn.PacketConnConfig
	for _, group := range socks.packetConns {
		lis := Listener{Transport: "udp", Addr: addrPort(group[0].LocalAddr()), ReadLoops: len(group)}
		ul := udpListener{lis: lis}
		var st *steering
		if len(group) > 1 {
			st = newSteering()
		}
		for i, pc := range group {
			g := newUDPGuard(pc, lis, s.log.With("component", "udp", "loop", i))
			s.guarded = append(s.guarded, g)
			gen, err := newRelayGenerator(s.cfg.Relay, s.ic.guard, s.ic)
			if err != nil {
				return nil, err
			}
			wrapped := newPacketConn(g, s.ic, &s.loops)
			wrapped.steer = st
			ul.loops = append(ul.loops, wrapped)
			pcs = append(pcs, turn.PacketConnConfig{
				PacketConn:            wrapped,
				RelayAddressGenerator: loopGenerator{RelayAddressGenerator: gen, loop: wrapped, allocs: s.ic.allocs},
				PermissionHandler:     perm,
			})
		}
		s.udp = append(s.udp, ul)
	}
	// pion's nonces for injected 401 and 438 (see nonce.go).
	pcs = append(pcs, turn.PacketConnConfig{PacketConn: newLoopPacketConn(s.ic.nonces.conn, &s.loops)})

	var lns []turn.ListenerConfig
	for i, ln := range socks.listeners {
		if c := socks.certs[i]; c != nil {
			// TLS beneath the interception: tcpConn reads plaintext.
			ln = tls.NewListener(ln, c.config)
		}
		gen, err := newRelayGenerator(s.cfg.Relay, s.ic.guard, s.ic)
		if err != nil {
			return nil, err
		}
		transport := "tcp"
		if socks.certs[i] != nil {
			transport = "tls"
		}
		g := newGuardListener(ln, Listener{Transport: transport, Addr: addrPort(ln.Addr())}, s.tcpLimits(), s.allocs, s.log.With("component", "tcp"))
		s.guards = append(s.guards, g)
		s.guarded = append(s.guarded, g)
		tl := newTrackingListener(g, &s.loops, func(c net.Conn) net.Conn {
			tc := newTCPConn(c, s.ic)
			s.ic.allocs.addTCP(tc)
			return tc
		})
		s.tcp = append(s.tcp, tl)
		lns = append(lns, turn.ListenerConfig{
			Listener:              tl,
			RelayAddressGenerator: gen,
			PermissionHandler:     perm,
		})
	}
	ts, err := turn.NewServer(turn.ServerConfig{
		PacketConnConfigs:  pcs,
		ListenerConfigs:    lns,
		LoggerFactory:      pionlog.Factory{Log: s.log.With("component", "pion")},
		InboundMTU:         inboundMTU,
		Realm:              s.cfg.Server.Realm,
		AuthHandler:        s.auth.handle,
		AllocationLifetime: s.cfg.Relay.AllocationLifetime.D(),
		PermissionTimeout:  s.cfg.Relay.PermissionLifetime.D(),
		ChannelBindTimeout: s.cfg.Relay.ChannelLifetime.D(),
		EventHandler: s.ic.allocs.events(s.ic.counts.turnEvents(turn.EventHandler{
			OnAllocationCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, _ int) { s.allocs.changed(src, dst, 1) },
			OnAllocationDeleted: func(src, dst net.Addr, _, _, _ string) { s.allocs.changed(src, dst, -1) },
		})),
	})
	if err != nil {
		return nil, fmt.Errorf("server: starting pion/turn: %w", err)
	}
	return ts, nil
}

// Close stops the server: it closes the HTTP side, pion's server, every
// listening socket and every accepted TCP connection, and waits for the
// goroutines serving them. Clients get closeGrace (one second) in total to
// be told: held webhook requests are answered 503, control sockets get a
// "going away" close frame, HTTP requests in flight may finish; whatever is
// left then is closed hard. So Close returns within about a second
// whatever the clients do. It is idempotent: a later call waits for the
// first to finish and returns nil.
func (s *Server) Close() error {
	// Close takes s.mu only to mark the server closed: the control ops and
	// HTTP handlers it waits for take s.mu too (Listeners, Stats).
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	started := s.started
	s.mu.Unlock()
	defer close(s.closeDone)
	if !started {
		s.hub.Close()
		s.ctl.Close()
		return nil
	}
	// Start has finished and cannot run again: its fields are fixed.
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	s.hub.Close()      // held webhook requests answer 503 now, not after their latency
	s.ic.trace.Close() // live captures end now
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		s.ctl.Close() // net/http does not close hijacked WebSockets
	}()
	// Shutdown stops accepting, closes idle connections and lets requests
	// in flight (the 503s above) be answered; at the deadline the rest are
	// closed.
	if err := s.http.Shutdown(ctx); err != nil {
		if err := s.http.Close(); err != nil {
			errs = append(errs, fmt.Errorf("server: closing http: %w", err))
		}
	}
	if err := s.turn.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: closing pion/turn: %w", err))
	}
	for _, tl := range s.tcp {
		tl.closeConns()
	}
	<-ctlDone // bounded: see control.Handler.Close
	s.serving.Wait()
	done := make(chan struct{})
	go func() { s.loops.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		errs = append(errs, errors.New("server: pion read loops did not exit"))
	}
	s.removeCertDir()
	return errors.Join(errs...)
}

// tcpLimits are the [server] tcp_* bounds of every tcp and tls listener.
func (s *Server) tcpLimits() tcpLimits {
	return tcpLimits{
		maxConns: s.cfg.Server.TCPMaxConnections,
		idle:     s.cfg.Server.TCPIdleTimeout.D(),
		frame:    s.cfg.Server.TCPFrameTimeout.D(),
	}
}

// Seed is the seed of the server's random source: [server].seed, the
// WithSeed option, or the random one chosen when both were 0.
func (s *Server) Seed() uint64 { return s.seed }

// Config returns a deep copy of the configuration the server was created
// with: changing it changes nothing in the server.
func (s *Server) Config() config.Config { return s.cfg.Clone() }

// Listeners returns the bound STUN/TURN sockets in config order; nil before
// Start.
func (s *Server) Listeners() []Listener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.socks == nil {
		return nil
	}
	return append([]Listener(nil), s.socks.addrs...)
}

// TURNAddr returns the address of the first listener of transport ("udp" or
// "tcp"); the zero AddrPort when there is none or the server is not started.
func (s *Server) TURNAddr(transport string) netip.AddrPort {
	for _, l := range s.Listeners() {
		if l.Transport == transport {
			return l.Addr
		}
	}
	return netip.AddrPort{}
}

// STUNAddr returns the address of the first UDP listener (the zero AddrPort
// when there is none): where a stun: URL points.
func (s *Server) STUNAddr() netip.AddrPort {
	return s.TURNAddr("udp")
}

// HTTPAddr returns the address of the HTTP side; the zero AddrPort before
// Start.
func (s *Server) HTTPAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLn == nil {
		return netip.AddrPort{}
	}
	return addrPort(s.httpLn.Addr())
}

// ControlURL returns the URL of the control WebSocket, such as
// "ws://127.0.0.1:8478/control"; empty before Start. The same ops answer as
// plain HTTP at HTTPURL()+"/api/{op}".
func (s *Server) ControlURL() string {
	a := s.HTTPAddr()
	if !a.IsValid() {
		return ""
	}
	return "ws://" + a.String() + "/control"
}

// HTTPURL returns the base URL of the HTTP side, such as
// "http://127.0.0.1:8478"; empty before Start.
func (s *Server) HTTPURL() string {
	a := s.HTTPAddr()
	if !a.IsValid() {
		return ""
	}
	return "http://" + a.String()
}

// Clock returns the server's clock: the one given with [WithClock], a
// *faults.ManualClock when [server].clock is "manual", or the system
// clock.
func (s *Server) Clock() faults.Clock { return s.clk }

// Faults returns the rule engine: add, replace and remove rules, switch
// scenarios, read counters and the journal of firings (Faults().Journal()).
// Changes apply to the very next message.
func (s *Server) Faults() *faults.Engine { return s.eng }

// Webhooks returns the simulated webhook endpoints (POST /webhook/NAME):
// their records, their state as rules see it, and their settings.
func (s *Server) Webhooks() *webhook.Hub { return s.hub }
