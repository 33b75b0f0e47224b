// Package gather is a small ICE gathering client for stunfault's own tests
// and examples: it stands in for a softphone's browser by running a
// pion/webrtc peer connection against a server's ICE servers and reporting
// the candidates it gathered.
//
// pion/webrtc has no icecandidateerror event, so a fault shows here as a
// missing candidate (no srflx after a Binding error, no relay after an
// Allocate error); the server's journal tells which rule fired. The package is
// internal: it is not part of stunfault's public API and may change with the
// tests that use it.
package gather

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/stunfault/stunfault/internal/pionlog"
	"github.com/stunfault/stunfault/server"
)

// DefaultSTUNGatherTimeout is how long pion waits for a Binding response per
// STUN server when Options.STUNGatherTimeout is zero. pion's own default is
// 5 s; stunfault answers on loopback at once, so a short wait keeps a test
// whose Binding is dropped fast.
const DefaultSTUNGatherTimeout = 500 * time.Millisecond

// Options tune a gathering. The zero value gathers over udp4 from loopback
// only, with DefaultSTUNGatherTimeout and every candidate type.
type Options struct {
	// NetworkTypes are the candidate networks: "udp4", "udp6", "tcp4",
	// "tcp6". Empty means udp4. TURN over TCP needs no "tcp4" here: pion
	// dials a turn:...?transport=tcp server whatever the network types, and
	// announces its relay candidates only under a UDP type, since the
	// relayed address is UDP. A TCP type adds no TCP host candidate either:
	// pion gathers those only with an ICE TCP mux, which Gather does not
	// set up.
	NetworkTypes []string
	// STUNGatherTimeout bounds each STUN server's Binding transaction (0 =
	// DefaultSTUNGatherTimeout).
	STUNGatherTimeout time.Duration
	// IPFilter keeps the local addresses to gather from. Nil keeps loopback
	// addresses only: stunfault listens on loopback, and the machine's other
	// interfaces must not change what a test sees.
	IPFilter func(netip.Addr) bool
	// RelayOnly sets the ICE transport policy to "relay", as a browser's
	// iceTransportPolicy: "relay" does: only relay candidates are gathered.
	RelayOnly bool
	// Logger receives pion's own logs (a failed Allocate or Binding shows at
	// Warn, with the error). Nil discards them.
	Logger *slog.Logger
}

// Candidate is one gathered local ICE candidate.
type Candidate struct {
	// Type is "host", "srflx", "prflx" or "relay".
	Type string
	// Protocol is the candidate's transport, "udp" or "tcp". A relay
	// candidate is UDP even when the TURN server is reached over TCP.
	Protocol string
	// Address and Port are the candidate's transport address.
	Address string
	Port    int
	// RelatedAddress and RelatedPort are the base of a srflx candidate and
	// the local socket of a relay candidate (empty and 0 for host).
	RelatedAddress string
	RelatedPort    int
	// Raw is the candidate line as a page would see it in
	// RTCIceCandidate.candidate ("candidate:...").
	Raw string
}

// AddrPort returns the candidate's address and port, or the zero value when
// the address is not an IP literal.
func (c Candidate) AddrPort() netip.AddrPort {
	a, err := netip.ParseAddr(c.Address)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, uint16(c.Port)) //nolint:gosec // a candidate's port fits in 16 bits
}

// String returns "type protocol address:port".
func (c Candidate) String() string {
	return c.Type + " " + c.Protocol + " " + net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
}

// Result is what a gathering produced.
type Result struct {
	// Candidates in the order pion reported them.
	Candidates []Candidate
	// Complete is true when pion signalled the end of gathering (the nil
	// candidate) before the context ended.
	Complete bool
	// Elapsed is the time from SetLocalDescription to the end of gathering
	// (or to the context's end).
	Elapsed time.Duration
}

// ByType returns the candidates of type typ ("host", "srflx", "relay").
func (r Result) ByType(typ string) []Candidate {
	var out []Candidate
	for _, c := range r.Candidates {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// Gather runs one ICE gathering against servers and returns the candidates.
// It creates a peer connection with a data channel (so there is a media
// section to gather for), creates an offer, sets it as the local description
// and collects candidates until pion reports gathering complete or ctx ends.
// When ctx ends first, Gather returns what it has with Complete false and an
// error wrapping ctx's. The peer connection is always closed, and Gather
// returns only once pion's goroutines for it have ended.
func Gather(ctx context.Context, servers []server.ICEServer, opts Options) (Result, error) {
	api, err := newAPI(opts)
	if err != nil {
		return Result{}, err
	}
	cfg := webrtc.Configuration{ICEServers: ICEServers(servers)}
	if opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("gather: new peer connection: %w", err)
	}
	res, err := run(ctx, pc)
	// GracefulClose (unlike Close) waits for the goroutines the peer
	// connection started, the ICE agent's gathering ones included, so a
	// caller's leak check sees none of them.
	if cerr := pc.GracefulClose(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("gather: close peer connection: %w", cerr))
	}
	return res, err
}

// collector gathers candidates from pion's callback, which runs on pion's
// goroutines.
type collector struct {
	mu    sync.Mutex
	cands []Candidate
	done  chan struct{} // closed on the nil candidate
	once  sync.Once
}

func (c *collector) onCandidate(ic *webrtc.ICECandidate) {
	if ic == nil {
		c.once.Do(func() { close(c.done) })
		return
	}
	cand := Candidate{
		Type:           ic.Typ.String(),
		Protocol:       ic.Protocol.String(),
		Address:        ic.Address,
		Port:           int(ic.Port),
		RelatedAddress: ic.RelatedAddress,
		RelatedPort:    int(ic.RelatedPort),
		Raw:            ic.ToJSON().Candidate,
	}
	c.mu.Lock()
	c.cands = append(c.cands, cand)
	c.mu.Unlock()
}

func (c *collector) snapshot() []Candidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Candidate(nil), c.cands...)
}

func run(ctx context.Context, pc *webrtc.PeerConnection) (Result, error) {
	col := &collector{done: make(chan struct{})}
	pc.OnICECandidate(col.onCandidate)
	if _, err := pc.CreateDataChannel("gather", nil); err != nil {
		return Result{}, fmt.Errorf("gather: create data channel: %w", err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return Result{}, fmt.Errorf("gather: create offer: %w", err)
	}
	start := time.Now()
	if err := pc.SetLocalDescription(offer); err != nil {
		return Result{}, fmt.Errorf("gather: set local description: %w", err)
	}
	select {
	case <-col.done:
		return Result{Candidates: col.snapshot(), Complete: true, Elapsed: time.Since(start)}, nil
	case <-ctx.Done():
		res := Result{Candidates: col.snapshot(), Elapsed: time.Since(start)}
		return res, fmt.Errorf("gather: gathering incomplete: %w", ctx.Err())
	}
}

// ICEServers converts stunfault's ICE servers to pion/webrtc's.
func ICEServers(servers []server.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		ws := webrtc.ICEServer{URLs: append([]string(nil), s.URLs...), Username: s.Username}
		if s.Credential != "" {
			ws.Credential = s.Credential
			ws.CredentialType = webrtc.ICECredentialTypePassword
		}
		out = append(out, ws)
	}
	return out
}

// newAPI builds a pion API whose SettingEngine makes gathering depend only on
// loopback and the given servers.
func newAPI(opts Options) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	// mDNS off: a host candidate would otherwise be a random .local name
	// instead of an address, and pion would open a multicast socket.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// pion skips loopback addresses unless told, and stunfault listens on
	// loopback: without this there is no local address to gather from.
	se.SetIncludeLoopbackCandidate(true)

	nts := opts.NetworkTypes
	if len(nts) == 0 {
		nts = []string{"udp4"}
	}
	types := make([]webrtc.NetworkType, 0, len(nts))
	for _, n := range nts {
		t, err := webrtc.NewNetworkType(n)
		if err != nil {
			return nil, fmt.Errorf("gather: network type %q: %w", n, err)
		}
		types = append(types, t)
	}
	se.SetNetworkTypes(types)

	timeout := opts.STUNGatherTimeout
	if timeout <= 0 {
		timeout = DefaultSTUNGatherTimeout
	}
	se.SetSTUNGatherTimeout(timeout)

	keep := opts.IPFilter
	if keep == nil {
		keep = netip.Addr.IsLoopback
	}
	se.SetIPFilter(func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		return ok && keep(a.Unmap())
	})

	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	se.LoggerFactory = pionlog.Factory{Log: log.With("component", "gather")}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se)), nil
}
