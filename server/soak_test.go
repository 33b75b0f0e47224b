package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/internal/loadgen"
	"github.com/stunfault/stunfault/server"
	"github.com/stunfault/stunfault/server/control"
)

// The soak test's bounds.
const (
	// soakShort is how long the soak runs by default (go test, CI), and
	// soakLong with STUNFAULT_SOAK=1.
	soakShort = 4 * time.Second
	soakLong  = time.Minute
	// soakWait bounds one transaction of the well-behaved client, and
	// every other wait: generous, because the machine is shared. Nothing
	// waits for it when all goes well.
	soakWait = 10 * time.Second
	// soakHeap bounds the server's heap in use (with the test's own
	// clients, in the same process). The server's documented global
	// bounds add up to about 100 MiB at most: 64 subscriptions of up to
	// 4096 events of about 250 bytes (64 MiB), the delay budget (16 MiB),
	// 1024 held and 1024 pending webhook requests of at most 64 KiB each
	// kept, per-connection TCP frame buffers, the journal (10,000
	// entries) and the trace. The soak reaches a fraction of them, so
	// its heap staying under 256 MiB means nothing grows without bound,
	// with room for the race detector's and the collector's slack.
	soakHeap = 256 << 20
	// soakStalls bounds the TCP connections held open at once waiting
	// for the server to close them.
	soakStalls = 8
)

// soakDuration is how long the soak's load runs.
func soakDuration() time.Duration {
	if os.Getenv("STUNFAULT_SOAK") == "1" {
		return soakLong
	}
	return soakShort
}

// TestSoak mixes, for a few seconds (a minute with STUNFAULT_SOAK=1), one
// well-behaved client (Bindings over UDP and TCP, datagrams through a TURN
// allocation to an echo peer) with hostile and heavy traffic from other
// loopback addresses: malformed UDP datagrams and TCP streams, rules
// churned over the control socket (aimed at those other addresses only),
// control subscribers that read slowly or never, and webhook load. The
// well-behaved client loses nothing, the heap stays bounded, the server
// still serves at the end, and Close leaves no goroutine behind.
//
// It is not parallel: the heap it bounds and the goroutines it counts are
// the process's.
func TestSoak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	d := soakDuration()
	cfg := testConfig()
	// Short TCP timeouts, so stalled and idle connections are closed
	// within the soak.
	cfg.Server.TCPIdleTimeout = faults.Duration(time.Second)
	cfg.Server.TCPFrameTimeout = faults.Duration(500 * time.Millisecond)
	srv := startServer(t, &cfg) // closed below; the cleanup's Close is then a no-op
	udpAddr := net.UDPAddrFromAddrPort(srv.TURNAddr("udp"))
	tcpAddr := srv.TURNAddr("tcp").String()

	// Everything the soak opens is ready before the load starts.
	good := map[string]*rawClient{
		"udp": dialRaw(t, srv, "udp", "127.0.0.1"),
		"tcp": dialRaw(t, srv, "tcp", "127.0.0.1"),
	}
	for transport, c := range good {
		if err := soakBinding(c); err != nil {
			t.Fatalf("first %s Binding: %v", transport, err)
		}
	}
	relay := startSoakRelay(t, srv)
	defer relay.close()
	ctl, err := control.Dial(t.Context(), srv.ControlURL(), nil)
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	defer ctl.Close()
	var subscribers []*websocket.Conn
	defer func() {
		for _, ws := range subscribers {
			_ = ws.Close()
		}
	}()
	for i := range 6 {
		ws, err := soakSubscribe(t, srv.ControlURL(), i)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		subscribers = append(subscribers, ws)
	}

	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var wg sync.WaitGroup
	var (
		bindings, relayed, hostileUDP, hostileTCP, closedByServer, churned, events atomic.Int64
		heapMax                                                                    atomic.Uint64
	)

	// The well-behaved client: every Binding answered with its own
	// address, every datagram echoed. Its Bindings go on until the rest
	// of the load has ended (the held hostile connections wait for the
	// server to close them, up to tcp_idle_timeout after the soak), so
	// its TCP connection is never idle: the server rightly closes an idle
	// one, and the final Binding would then meet a closed connection.
	goodCtx, stopGood := context.WithTimeout(t.Context(), d+soakWait)
	defer stopGood()
	var goodWG sync.WaitGroup
	for transport, c := range good {
		goodWG.Go(func() {
			every := 2 * time.Millisecond
			pace(goodCtx, every, d+soakWait, func() bool {
				if err := soakBinding(c); err != nil {
					t.Errorf("well-behaved %s Binding %d: %v", transport, bindings.Load(), err)
					return false
				}
				bindings.Add(1)
				return true
			})
		})
	}
	wg.Go(func() {
		pace(ctx, 5*time.Millisecond, d, func() bool {
			if err := relay.roundTrip(relayed.Load()); err != nil {
				t.Errorf("well-behaved relay datagram %d: %v", relayed.Load(), err)
				return false
			}
			relayed.Add(1)
			return true
		})
	})

	// Malformed UDP from 127.0.0.2-5, never reading what comes back.
	for i := range 4 {
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.%d:0", 2+i))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		wg.Go(func() {
			n := 0
			pace(ctx, 2*time.Millisecond, d, func() bool {
				_, _ = pc.WriteTo(hostileDatagram(rng, n), udpAddr) // the kernel may refuse some: fine
				n++
				hostileUDP.Add(1)
				return true
			})
		})
	}

	// Malformed TCP from 127.0.0.2-5: garbage, oversized lengths,
	// connections abandoned, stalled inside a frame or idle (the server
	// must close those two).
	stalls := make(chan struct{}, soakStalls)
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		n := 0
		var held sync.WaitGroup
		defer held.Wait()
		pace(ctx, 10*time.Millisecond, d, func() bool {
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n%4))}
			kind := n % 5
			n++
			if kind >= 3 { // stall or idle: only soakStalls at once
				select {
				case stalls <- struct{}{}:
				default:
					kind = n % 3
				}
			}
			dialer := net.Dialer{LocalAddr: src, Timeout: soakWait}
			c, err := dialer.Dial("tcp", tcpAddr)
			if err != nil {
				if kind >= 3 {
					<-stalls
				}
				t.Errorf("hostile TCP connection %d: %v", n, err)
				return false
			}
			hostileTCP.Add(1)
			switch kind {
			case 0: // garbage
				_, _ = c.Write(randomBytes(rng, 1+rng.IntN(300)))
			case 1: // opened and abandoned
			case 2: // a ChannelData frame announcing 64 KiB, never sent
				_, _ = c.Write([]byte{0x40, 0x01, 0xff, 0xff, 1, 2, 3, 4})
			case 3, 4: // stalled inside a Binding header, or idle
				if kind == 3 {
					hdr := bindingRequest().Raw[:20]
					binary.BigEndian.PutUint16(hdr[2:4], 100)
					_, _ = c.Write(append(hdr, 1, 2, 3, 4))
				}
				held.Go(func() {
					defer func() { <-stalls }()
					defer c.Close()
					if err := serverCloses(c); err != nil {
						t.Errorf("hostile TCP connection (kind %d): %v", kind, err)
						return
					}
					closedByServer.Add(1)
				})
				return true
			}
			_ = c.Close()
			return true
		})
	})

	// Rule churn over the control socket, aimed at 127.0.0.2-7 only.
	wg.Go(func() {
		i := 0
		pace(ctx, 5*time.Millisecond, d, func() bool {
			cx, cancel := context.WithTimeout(t.Context(), soakWait)
			defer cancel()
			var err error
			switch i % 6 {
			case 0, 1:
				_, _, err = ctl.AddRule(cx, soakRule(i))
			case 2:
				_, _, err = ctl.ReplaceRules(cx, []faults.Rule{soakRule(i), soakRule(i + 1), soakRule(i + 2), soakRule(i + 3)})
			case 3:
				_, _, err = ctl.AddRules(cx, []faults.Rule{soakRule(i), soakRule(i + 5)})
			case 4:
				_, _, err = ctl.ClearRules(cx)
			case 5:
				mode := []string{"sync", "async"}[i/6%2]
				_, err = ctl.SetWebhook(cx, "servicenow", control.WebhookSettings{Mode: &mode})
			}
			if err != nil {
				t.Errorf("churn %d: %v", i, err)
				return false
			}
			i++
			churned.Add(1)
			return true
		})
	})

	// Slow subscribers (the first two) read an event every 20 ms; the
	// others never read.
	for _, ws := range subscribers[:2] {
		wg.Go(func() {
			pace(ctx, 20*time.Millisecond, d, func() bool {
				_ = ws.SetReadDeadline(time.Now().Add(soakWait))
				if _, _, err := ws.ReadMessage(); err != nil {
					t.Errorf("slow subscriber: %v", err)
					return false
				}
				events.Add(1)
				return true
			})
		})
	}

	// Webhook load.
	var hooks *loadgen.HTTPResult
	wg.Go(func() {
		var err error
		hooks, err = loadgen.RunHTTP(t.Context(), loadgen.HTTP{
			URL:         srv.HTTPURL() + "/webhook/servicenow",
			Concurrency: 16,
			Requests:    int(d.Seconds()*200) + 1,
			Duration:    d,
			Rate:        200,
			Body:        []byte(`{"ticket_id":"INC0010001"}`),
			Header:      http.Header{"Content-Type": {"application/json"}},
			Timeout:     soakWait,
		})
		if err != nil {
			t.Errorf("webhook load: %v", err)
		}
	})

	// The heap, sampled.
	wg.Go(func() {
		var ms runtime.MemStats
		pace(ctx, 50*time.Millisecond, d, func() bool {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > heapMax.Load() {
				heapMax.Store(ms.HeapInuse)
			}
			return true
		})
	})

	wg.Wait()
	stopGood()
	goodWG.Wait()
	t.Logf("%v: %d Bindings and %d relayed datagrams answered; %d malformed datagrams, %d hostile TCP connections (%d closed by the server), %d rule changes, %d events read slowly; webhooks %+v; heap in use at most %d MiB",
		d, bindings.Load(), relayed.Load(), hostileUDP.Load(), hostileTCP.Load(), closedByServer.Load(), churned.Load(), events.Load(), hooks.Statuses, heapMax.Load()>>20)
	if t.Failed() {
		return
	}

	if heapMax.Load() > soakHeap {
		t.Errorf("heap in use reached %d MiB, want at most %d MiB", heapMax.Load()>>20, soakHeap>>20)
	}
	if hooks != nil {
		if hooks.Errors != 0 || hooks.Answered == 0 {
			t.Errorf("webhook load: %d answered, %d without an answer (first: %v)", hooks.Answered, hooks.Errors, hooks.FirstErr)
		}
		for status := range hooks.Statuses {
			if status != http.StatusCreated && status != http.StatusAccepted {
				t.Errorf("webhook load got %d %d times, want only 201 (sync) and 202 (async)", status, hooks.Statuses[status])
			}
		}
	}
	if bindings.Load() == 0 || relayed.Load() == 0 || churned.Load() == 0 || hostileUDP.Load() == 0 {
		t.Errorf("a load did not run: %d Bindings, %d relayed, %d rule changes, %d malformed datagrams",
			bindings.Load(), relayed.Load(), churned.Load(), hostileUDP.Load())
	}

	// The server still serves, and the rules never touched the
	// well-behaved client while they fired on the others.
	for transport, c := range good {
		if err := soakBinding(c); err != nil {
			t.Errorf("final %s Binding: %v", transport, err)
		}
	}
	if err := relay.roundTrip(-1); err != nil {
		t.Errorf("final relayed datagram: %v", err)
	}
	cx, cancelCall := context.WithTimeout(t.Context(), soakWait)
	defer cancelCall()
	if n, err := ctl.CountJournal(cx, faults.Query{Client: "127.0.0.1"}); err != nil || n != 0 {
		t.Errorf("journal entries for the well-behaved client: %d (%v), want 0", n, err)
	}
	if n, err := ctl.CountJournal(cx, faults.Query{Client: "127.0.0.0/29"}); err != nil || n == 0 {
		t.Errorf("journal entries for the hostile senders: %d (%v), want some: the churned rules fired on nothing", n, err)
	}
	st, err := ctl.Stats(cx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if st.Intercept == nil || st.Intercept.Panics != 0 {
		t.Errorf("stats intercept = %+v, want no panic", st.Intercept)
	}
	if err := healthz(cx, srv.HTTPURL()); err != nil {
		t.Errorf("/healthz: %v", err)
	}

	// Close leaves nothing behind, whatever the subscribers still hold.
	relay.close()
	_ = ctl.Close()
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	goleak.VerifyNone(t, before)
}

// pace calls f every interval until f returns false, ctx ends, or f ran
// as often as d allows (a bound in count besides the one in time).
func pace(ctx context.Context, every, d time.Duration, f func() bool) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range int(d/every) + 1 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !f() {
			return
		}
	}
}

// soakBinding sends one Binding request on c and checks its answer: a
// success to that transaction carrying c's own address.
func soakBinding(c *rawClient) error {
	req := bindingRequest()
	if _, err := c.conn.Write(req.Raw); err != nil {
		return err
	}
	b, err := c.next(soakWait)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil {
		return fmt.Errorf("answer does not decode: %w", err)
	}
	if m.TransactionID != req.TransactionID || m.Type != stun.BindingSuccess {
		return fmt.Errorf("got %s to transaction %x, want a Binding success to %x", m.Type, m.TransactionID, req.TransactionID)
	}
	var a stun.XORMappedAddress
	if err := a.GetFrom(m); err != nil {
		return fmt.Errorf("XOR-MAPPED-ADDRESS: %w", err)
	}
	ip, _ := netip.AddrFromSlice(a.IP)
	if got := netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)); got != c.addr() { //nolint:gosec // a port
		return fmt.Errorf("XOR-MAPPED-ADDRESS %s, want %s", got, c.addr())
	}
	return nil
}

// soakRelay is the well-behaved client's TURN allocation and its echo peer.
type soakRelay struct {
	peer, conn net.PacketConn
	client     *turn.Client
	relay      net.PacketConn
	echoed     sync.WaitGroup
	closeOnce  sync.Once
}

// startSoakRelay allocates a relay over UDP and starts a loopback echo
// peer; close ends both.
func startSoakRelay(t *testing.T, srv *server.Server) *soakRelay {
	t.Helper()
	r := &soakRelay{}
	var err error
	if r.peer, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	r.echoed.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := r.peer.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = r.peer.WriteTo(buf[:n], from)
		}
	})
	if r.conn, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		r.close()
		t.Fatal(err)
	}
	addr := srv.TURNAddr("udp").String()
	r.client, err = turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: "user", Password: "pass", Realm: "stunfault.test",
		Conn: r.conn,
	})
	if err != nil {
		r.close()
		t.Fatalf("turn.NewClient: %v", err)
	}
	if err := r.client.Listen(); err != nil {
		r.close()
		t.Fatalf("turn client Listen: %v", err)
	}
	if r.relay, err = r.client.Allocate(); err != nil {
		r.close()
		t.Fatalf("Allocate: %v", err)
	}
	if err := r.roundTrip(-1); err != nil {
		r.close()
		t.Fatalf("first relayed datagram: %v", err)
	}
	return r
}

// roundTrip sends datagram n through the relay to the peer and waits for
// its echo.
func (r *soakRelay) roundTrip(n int64) error {
	out := fmt.Appendf(nil, "soak datagram %d", n)
	if _, err := r.relay.WriteTo(out, r.peer.LocalAddr()); err != nil {
		return err
	}
	_ = r.relay.SetReadDeadline(time.Now().Add(soakWait))
	buf := make([]byte, 1500)
	got, from, err := r.relay.ReadFrom(buf)
	if err != nil {
		return fmt.Errorf("no echo: %w", err)
	}
	if !bytes.Equal(buf[:got], out) || from.String() != r.peer.LocalAddr().String() {
		return fmt.Errorf("got %q from %s, want %q from %s", buf[:got], from, out, r.peer.LocalAddr())
	}
	return nil
}

func (r *soakRelay) close() {
	r.closeOnce.Do(func() {
		if r.relay != nil {
			_ = r.relay.Close()
		}
		if r.client != nil {
			r.client.Close()
		}
		if r.conn != nil {
			_ = r.conn.Close()
		}
		_ = r.peer.Close()
		r.echoed.Wait()
	})
}

// hostileDatagram returns the nth malformed (or, one in six, valid, for
// the churned rules to fire on) datagram of a hostile sender.
func hostileDatagram(rng *rand.Rand, n int) []byte {
	switch n % 6 {
	case 0: // random bytes
		return randomBytes(rng, 1+rng.IntN(600))
	case 1: // a truncated STUN header
		return bindingRequest().Raw[:1+rng.IntN(19)]
	case 2: // a header announcing far more than follows
		b := bindingRequest().Raw
		binary.BigEndian.PutUint16(b[2:4], 0xfffc)
		return b
	case 3: // ChannelData: longer than announced, shorter, or unbound
		b := []byte{0x40, byte(rng.IntN(256)), 0, 0}
		b = append(b, randomBytes(rng, rng.IntN(100))...)
		binary.BigEndian.PutUint16(b[2:4], uint16(rng.IntN(0x10000))) //nolint:gosec // < 65536
		return b
	case 4: // an attribute running past the message's end
		b := bindingRequest().Raw
		b = append(b, 0x80, 0x22, 0x01, 0x00, 'x')
		return b
	}
	return bindingRequest().Raw
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// soakRule is the ith rule of the churn: each aimed at 127.0.0.2-7, never
// at the well-behaved client on 127.0.0.1.
func soakRule(i int) faults.Rule {
	id := fmt.Sprintf("soak-%d", i%8)
	src := []string{"127.0.0.2/31", "127.0.0.4/30"}[i%2]
	m := faults.Match{Sources: []string{src}}
	var a faults.Action
	switch i % 9 {
	case 0:
		m.Methods = []string{"binding"}
		a = faults.Action{Type: "error", Code: 403, Reason: "Forbidden"}
	case 1:
		a = faults.Action{Type: "drop"}
	case 2:
		a = faults.Action{Type: "delay", Delay: faults.Duration(100 * time.Millisecond), Jitter: faults.Duration(50 * time.Millisecond)}
	case 3:
		a = faults.Action{Type: "duplicate", Copies: 3}
	case 4:
		m.Direction = "out"
		a = faults.Action{Type: "corrupt", Target: "attribute", Count: 2}
	case 5:
		m.Transports = []string{"tcp"}
		a = faults.Action{Type: "close"}
	case 6:
		a = faults.Action{Type: "ratelimit", Rate: 10, Burst: 5, Then: &faults.Action{Type: "drop"}}
	case 7:
		m.Webhook = &faults.WebhookMatch{Name: "servicenow", MinInflight: 1}
		a = faults.Action{Type: "error", Code: 500, Reason: "Server Error"}
	case 8:
		m.Direction = "out"
		a = faults.Action{Type: "truncate", Length: 24}
	}
	return faults.Rule{ID: id, Labels: map[string]string{"test": "soak"}, Priority: i % 3, Match: m, Action: a}
}

// soakSubscribe opens a control socket and subscribes to every event, with
// the largest buffer; it reads the reply only for the slow readers
// (i < 2), the others never read a byte.
func soakSubscribe(t *testing.T, url string, i int) (*websocket.Conn, error) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), url, nil)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	msg := fmt.Sprintf(`{"id":1,"op":"subscribe","filter":{},"buffer":%d}`, control.MaxEventBuffer)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		_ = ws.Close()
		return nil, err
	}
	if i >= 2 {
		return ws, nil
	}
	_ = ws.SetReadDeadline(time.Now().Add(soakWait))
	_, data, err := ws.ReadMessage()
	if err != nil || !bytes.Contains(data, []byte(`"ok":true`)) {
		_ = ws.Close()
		return nil, fmt.Errorf("subscribe: %s %v", data, err)
	}
	return ws, nil
}

// serverCloses waits for the server to end c: a read returns EOF or a reset,
// not a timeout.
func serverCloses(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(soakWait))
	buf := make([]byte, 1500)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return nil
		}
		return fmt.Errorf("read: %w, want the server to close the connection", err)
	}
}

// healthz asks GET /healthz and wants 200.
func healthz(ctx context.Context, base string) error {
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return nil
}
