package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stunfault/stunfault/config"
	"github.com/stunfault/stunfault/server"
)

// indexHTML is the page: it gathers and reports candidates and errors.
//
//go:embed index.html
var indexHTML []byte

// maxEventBytes bounds one POST /event body.
const maxEventBytes = 64 << 10

// Event is one thing the page saw, as it POSTs it to /event.
type Event struct {
	// Type is "started" (the offer is set, gathering runs), "candidate",
	// "error" (an icecandidateerror), "complete" (the null candidate),
	// "note" or "fatal" (the page could not gather; Text says why).
	Type string `json:"type"`
	// Seq numbers the page's events from 1; MS is the time since the page
	// started gathering.
	Seq int `json:"seq"`
	MS  int `json:"ms"`
	// CandidateType ("host", "srflx", "prflx", "relay"), Protocol and
	// Candidate (the candidate line) describe a candidate.
	CandidateType string `json:"candidateType,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	Candidate     string `json:"candidate,omitempty"`
	// RelayProtocol is how a relay candidate reached its TURN server
	// ("udp", "tcp" or "tls").
	RelayProtocol string `json:"relayProtocol,omitempty"`
	// Address and Port are the candidate's address, or the local address an
	// error was reported for (empty when the browser hides it).
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	// URL is the ICE server a candidate came from or an error is about, as
	// the browser reports it.
	URL string `json:"url,omitempty"`
	// ErrorCode and ErrorText are the icecandidateerror's fields.
	ErrorCode int    `json:"errorCode,omitempty"`
	ErrorText string `json:"errorText,omitempty"`
	// Text is a note's or a fatal error's message.
	Text string `json:"text,omitempty"`
}

// String formats e as one line of the transcript.
func (e Event) String() string {
	switch e.Type {
	case "candidate":
		return fmt.Sprintf("candidate %-5s %s %s:%d %s", e.CandidateType, e.Protocol, e.Address, e.Port, e.URL)
	case "error":
		return fmt.Sprintf("icecandidateerror %d %q %s (local %s:%d)", e.ErrorCode, e.ErrorText, e.URL, e.Address, e.Port)
	case "note", "fatal":
		return e.Type + " " + e.Text
	}
	return e.Type
}

// PageConfig is what GET /config answers: the RTCConfiguration the page
// uses.
type PageConfig struct {
	ICEServers         []server.ICEServer `json:"iceServers"`
	ICETransportPolicy string             `json:"iceTransportPolicy"`
}

// page serves the page, its /config and its /event reports.
type page struct {
	servers []server.ICEServer
	// onEvent receives each event the page POSTs, in the order they arrive
	// (the page's own order is in Event.Seq). It is called from the HTTP
	// handler's goroutine and must not block long.
	onEvent func(Event)
}

// newPage returns the handler for a page that gathers against servers.
func newPage(servers []server.ICEServer, onEvent func(Event)) http.Handler {
	p := &page{servers: servers, onEvent: onEvent}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.serveIndex)
	mux.HandleFunc("GET /config", p.serveConfig)
	mux.HandleFunc("POST /event", p.serveEvent)
	return mux
}

func (p *page) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(indexHTML)
}

// serveConfig answers the page's RTCConfiguration. Query parameters: only
// (a comma-separated list of stun, turn-udp, turn-tcp: keep only those
// URLs) and policy (all or relay).
func (p *page) serveConfig(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cfg := PageConfig{ICEServers: p.servers, ICETransportPolicy: "all"}
	if only := q.Get("only"); only != "" {
		kinds := strings.Split(only, ",")
		for _, k := range kinds {
			if !slices.Contains([]string{"stun", "turn-udp", "turn-tcp"}, k) {
				http.Error(w, fmt.Sprintf("only: unknown kind %q (want stun, turn-udp, turn-tcp)", k), http.StatusBadRequest)
				return
			}
		}
		cfg.ICEServers = filterServers(p.servers, kinds)
	}
	switch policy := q.Get("policy"); policy {
	case "", "all":
	case "relay":
		cfg.ICETransportPolicy = policy
	default:
		http.Error(w, fmt.Sprintf("policy: unknown value %q (want all or relay)", policy), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(cfg)
}

func (p *page) serveEvent(w http.ResponseWriter, r *http.Request) {
	var ev Event
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEventBytes)).Decode(&ev); err != nil {
		http.Error(w, "event: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.onEvent != nil {
		p.onEvent(ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

// urlKind returns the kind of an ICE server URL: "stun", "turn-udp",
// "turn-tcp", or "" for anything else (turns:).
func urlKind(u string) string {
	switch {
	case strings.HasPrefix(u, "stun:"):
		return "stun"
	case strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=tcp"):
		return "turn-tcp"
	case strings.HasPrefix(u, "turn:"):
		return "turn-udp"
	}
	return ""
}

// filterServers keeps the URLs of servers whose kind is in kinds, and drops
// servers left without URLs.
func filterServers(servers []server.ICEServer, kinds []string) []server.ICEServer {
	out := []server.ICEServer{}
	for _, s := range servers {
		var urls []string
		for _, u := range s.URLs {
			if slices.Contains(kinds, urlKind(u)) {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			s.URLs = urls
			out = append(out, s)
		}
	}
	return out
}

// options are run's inputs.
type options struct {
	// config is a stunfault config (TOML); nil means config.Default().
	// configName names it in errors.
	config     []byte
	configName string
	// scenario, when set, is activated before the page is served.
	scenario string
	// addr is where the page is served ("127.0.0.1:0" when empty).
	addr string
	// log receives stunfault's and pion's logs; nil discards them.
	log *slog.Logger
}

// run starts stunfault from opts on free loopback ports and serves the page
// on opts.addr until ctx ends. It prints the addresses, then every event
// the page reports, to w. ready, when not nil, is called with the page's
// URL once it is served. run returns ctx's error when ctx ends.
func run(ctx context.Context, w io.Writer, opts options, ready func(pageURL string)) (err error) {
	cfg := config.Default()
	if opts.config != nil {
		if cfg, err = config.Parse(opts.config, opts.configName); err != nil {
			return err
		}
	}
	if err := cfg.ListenOnFreePorts(); err != nil {
		return err
	}
	var srvOpts []server.Option
	if opts.log != nil {
		srvOpts = append(srvOpts, server.WithLogger(opts.log))
	}
	srv, err := server.New(cfg, srvOpts...)
	if err != nil {
		return err
	}
	if opts.scenario != "" {
		if _, err := srv.Faults().ActivateScenario(opts.scenario); err != nil {
			return errors.Join(err, srv.Close())
		}
	}
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, srv.Close())
	}
	defer func() { err = errors.Join(err, srv.Close()) }()

	addr := opts.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	events := make(chan Event, 64)
	hs := &http.Server{
		Handler: newPage(srv.ICEServers(), func(ev Event) {
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		err = errors.Join(err, hs.Close())
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}()

	pageURL := "http://" + ln.Addr().String() + "/"
	rules := len(cfg.Rules)
	if opts.scenario != "" {
		rules = len(cfg.Scenarios[opts.scenario].Rules)
	}
	fmt.Fprintf(w, "stunfault on stun:%s, turn:%s (udp, tcp); %d rules active; control %s\n",
		srv.STUNAddr(), srv.STUNAddr(), rules, srv.ControlURL())
	fmt.Fprintf(w, "open %s in a browser on this machine (Ctrl-C to stop)\n", pageURL)
	if ready != nil {
		ready(pageURL)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-events:
			fmt.Fprintf(w, "page: %s\n", ev)
		}
	}
}
