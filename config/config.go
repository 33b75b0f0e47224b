package config

import (
	"runtime"

	"github.com/stunfault/stunfault/faults"
)

// Config is the whole of stunfault's configuration: what [Load] and [Parse]
// return and what server.New takes. Every field maps to a TOML key of the same
// name in snake case; README.md's configuration reference lists them with
// their defaults. A Config is plain data and safe to copy; the zero value is
// not valid, start from [Default].
type Config struct {
	Server Server `toml:"server"`
	// Listen lists the STUN/TURN listeners.
	Listen []Listener `toml:"listen"`
	Relay  Relay      `toml:"relay"`
	// Users are the long-term credentials TURN accepts.
	Users []User `toml:"users"`
	Auth  Auth   `toml:"auth"`
	HTTP  HTTP   `toml:"http"`
	// Webhooks are the simulated webhook endpoints, by name
	// (POST /webhook/NAME).
	Webhooks map[string]Webhook `toml:"webhooks"`
	// Rules are the fault rules active at start.
	Rules []faults.Rule `toml:"rules"`
	// Scenarios are named rule sets that can replace Rules as a whole.
	Scenarios map[string]Scenario `toml:"scenarios"`
}

// Server holds process-wide settings.
type Server struct {
	// Realm is the TURN long-term credential realm.
	Realm string `toml:"realm"`
	// Software is the SOFTWARE attribute on responses stunfault generates.
	Software string `toml:"software"`
	// Seed seeds the RNG behind every probabilistic decision; 0 means random
	// (the chosen seed is printed at start).
	Seed uint64 `toml:"seed"`
	// JournalSize is how many decisions the journal keeps.
	JournalSize int `toml:"journal_size"`
	// Clock is "system" (the wall clock) or "manual": a faults.ManualClock
	// that starts at the wall clock's time and moves only when the
	// clock.advance control op moves it. A Go option (server.WithClock)
	// overrides it.
	Clock string `toml:"clock"`
	// TCPMaxConnections bounds the open connections of each tcp or tls
	// listener; beyond it, new connections are closed as they are accepted
	// (and counted in stats).
	TCPMaxConnections int `toml:"tcp_max_connections"`
	// TCPIdleTimeout closes a tcp or tls connection that has no TURN
	// allocation and has sent nothing for this long (coturn does the same).
	TCPIdleTimeout faults.Duration `toml:"tcp_idle_timeout"`
	// TCPFrameTimeout closes a tcp or tls connection that has sent part of
	// a message and not the rest for this long.
	TCPFrameTimeout faults.Duration `toml:"tcp_frame_timeout"`
	// TraceSize is how many messages the trace keeps (every message in
	// both directions; see README.md, "Trace"); 0 turns the trace off.
	TraceSize int `toml:"trace_size"`
	// CaptureBytes bounds the bytes of traced messages kept for captures
	// (GET /capture.pcapng); 0 keeps none.
	CaptureBytes int `toml:"capture_bytes"`
	// ReadLoops is how many sockets each udp listener opens on its address
	// (SO_REUSEPORT, Linux only; one elsewhere), each with its own pion
	// read loop: the kernel hands each client's datagrams to one of them.
	// 0 means one per CPU ([Server.UDPReadLoops]); at most [MaxReadLoops].
	ReadLoops int `toml:"read_loops"`
}

// MaxReadLoops is the largest [Server.ReadLoops]: each read loop holds
// its own 1 MiB of batch buffers.
const MaxReadLoops = 64

// UDPReadLoops is the number of read loops (sockets) per udp listener that
// ReadLoops asks for: itself, or, when 0, runtime.NumCPU() (at most
// MaxReadLoops).
func (s Server) UDPReadLoops() int {
	if s.ReadLoops > 0 {
		return s.ReadLoops
	}
	return min(max(runtime.NumCPU(), 1), MaxReadLoops)
}

// The values of [Server.Clock].
const (
	// ClockSystem is the wall clock.
	ClockSystem = "system"
	// ClockManual is a manual clock moved over the control socket.
	ClockManual = "manual"
)

// Upper bounds of [Server.TraceSize] and [Server.CaptureBytes]: the trace
// holds 168 bytes per message, so the largest trace is some 170 MB, plus
// at most 1 GiB of bytes.
const (
	maxTraceSize    = 1_000_000
	maxCaptureBytes = 1 << 30
)

// Listener is one STUN/TURN listening socket.
type Listener struct {
	// Transport is "udp", "tcp" or "tls" (STUN/TURN over TLS over TCP: the
	// turns: and stuns: URLs).
	Transport string `toml:"transport"`
	// Address is host:port; port 0 picks a free port.
	Address string `toml:"address"`
	// CertFile and KeyFile are the PEM certificate (chain) and private key
	// of a tls listener. Both or neither: when neither is given, the server
	// generates a self-signed certificate for the listener's address at
	// start and prints its path and SPKI hash.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// Relay configures TURN relayed transport addresses.
type Relay struct {
	// Address is the IP relayed addresses are bound to (IPv4 or IPv6), for
	// clients asking for a relay of its family.
	Address string `toml:"address"`
	// Address6 is a second relay address, of the other family ("::1" by
	// default beside an IPv4 Address): an Allocate for a family that has
	// no relay address gets 440 Address Family not Supported. Empty: none.
	Address6 string `toml:"address6"`
	// ExternalAddress and ExternalAddress6 are what XOR-RELAYED-ADDRESS
	// carries instead of Address and Address6, while relays are still
	// bound on those (coturn's external-ip): the address clients can reach
	// when the server sits behind a NAT or in a container. Empty: the bound
	// address itself.
	ExternalAddress  string `toml:"external_address"`
	ExternalAddress6 string `toml:"external_address6"`
	// MinPort and MaxPort bound the relay port range (inclusive).
	MinPort int `toml:"min_port"`
	MaxPort int `toml:"max_port"`
	// AllowPeers lists the peer prefixes (CIDR) clients may get permissions
	// for; anything else is refused, so stunfault is never an open relay.
	AllowPeers []string `toml:"allow_peers"`
	// TCPAllocations allows RFC 6062 TCP allocations (Allocate with
	// REQUESTED-TRANSPORT TCP, then Connect and ConnectionBind). Off by
	// default: such an Allocate gets 442 Unsupported Transport Protocol.
	TCPAllocations bool `toml:"tcp_allocations"`
	// AllocationLifetime, PermissionLifetime and ChannelLifetime are the
	// TURN lifetimes.
	AllocationLifetime faults.Duration `toml:"allocation_lifetime"`
	PermissionLifetime faults.Duration `toml:"permission_lifetime"`
	ChannelLifetime    faults.Duration `toml:"channel_lifetime"`
}

// User is a long-term credential.
type User struct {
	Name     string `toml:"name"`
	Password string `toml:"password"`
}

// Auth configures the TURN REST API (coturn's use-auth-secret).
type Auth struct {
	// Secret, when set, lets clients authenticate with username
	// "EXPIRY:NAME" (EXPIRY in Unix seconds) and password
	// base64(HMAC-SHA1(Secret, username)).
	Secret string `toml:"secret"`
}

// HTTP configures the HTTP side: /healthz, /version and, as they land, the
// control socket, /api and the webhooks.
type HTTP struct {
	// Address is host:port; port 0 picks a free port.
	Address string `toml:"address"`
	// Token is required from clients of the control socket; it must be set
	// when Address is not loopback.
	Token string `toml:"token"`
	// AllowedOrigins are extra Origins allowed to open the control socket.
	AllowedOrigins []string `toml:"allowed_origins"`
	// ReadTimeout bounds reading a request's headers, and again reading its
	// body; a client slower than that gets no answer (headers) or 400 (body).
	ReadTimeout faults.Duration `toml:"read_timeout"`
	// IdleTimeout closes a keep-alive connection idle for this long.
	IdleTimeout faults.Duration `toml:"idle_timeout"`
}

// Webhook is one simulated webhook endpoint.
type Webhook struct {
	// Latency (plus up to Jitter) is how long a request is held (sync) or
	// its work stays pending (async).
	Latency faults.Duration `toml:"latency"`
	Jitter  faults.Duration `toml:"jitter"`
	// Mode is "sync" or "async".
	Mode string `toml:"mode"`
	// Status, Body and ContentType make the response.
	Status      int    `toml:"status"`
	Body        string `toml:"body"`
	ContentType string `toml:"content_type"`
	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// RateLimit is requests per second; excess gets 429 (0 = no limit).
	RateLimit float64 `toml:"rate_limit"`
	// ErrorStatus, when not 0, is answered instead of Status with
	// ErrorProbability.
	ErrorStatus      int     `toml:"error_status"`
	ErrorProbability float64 `toml:"error_probability"`
}

// Scenario is a named rule set ([[scenarios.NAME.rules]]) or a timeline of
// rule sets ([[scenarios.NAME.steps]], each with at and rules; optional
// repeat): the engine's own type.
type Scenario = faults.Scenario
