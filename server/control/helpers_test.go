package control_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"go.uber.org/goleak"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend is a Backend around a real engine, with webhooks in a map.
type fakeBackend struct {
	eng *faults.Engine

	mu       sync.Mutex
	webhooks map[string]control.WebhookSettings
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{
		eng:      faults.NewEngine(faults.EngineOptions{Seed: 42}),
		webhooks: map[string]control.WebhookSettings{"servicenow": {}},
	}
}

func (b *fakeBackend) Engine() *faults.Engine { return b.eng }

func (b *fakeBackend) Clock() faults.Clock { return faults.SystemClock{} }

func (b *fakeBackend) Allocations() []control.Allocation { return nil }

func (b *fakeBackend) ExpireAllocations(_ context.Context, sel control.AllocationSelector) ([]control.Allocation, error) {
	return nil, fmt.Errorf("%s: %w", sel, control.ErrUnknownAllocation)
}

func (b *fakeBackend) ExpirePermissions(_ context.Context, sel control.PermissionSelector) ([]control.ExpiredPermission, error) {
	return nil, fmt.Errorf("%s: %w", sel.AllocationSelector, control.ErrUnknownAllocation)
}

func (b *fakeBackend) ExpireChannels(_ context.Context, sel control.ChannelSelector) ([]control.ExpiredChannel, error) {
	return nil, fmt.Errorf("%s: %w", sel.AllocationSelector, control.ErrUnknownAllocation)
}

func (b *fakeBackend) Hello() control.Hello {
	return control.Hello{Version: "test", Capabilities: []string{"webhooks"}}
}

func (b *fakeBackend) Stats() control.Stats {
	n := 0
	return control.Stats{
		Listeners:   []control.ListenerStats{{Transport: "udp", Address: "127.0.0.1:3478"}},
		Allocations: &n,
	}
}

func (b *fakeBackend) SetWebhook(_ context.Context, name string, s control.WebhookSettings) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.webhooks[name]; !ok {
		return fmt.Errorf("webhook %q: %w", name, webhook.ErrUnknownWebhook)
	}
	b.webhooks[name] = s
	return nil
}

func (b *fakeBackend) webhook(name string) control.WebhookSettings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.webhooks[name]
}

// testServer is a handler on an httptest server.
type testServer struct {
	b     *fakeBackend
	h     *control.Handler
	srv   *httptest.Server
	wsURL string
}

// newTestServer starts a handler with opts; everything is closed when the
// test ends.
func newTestServer(t *testing.T, opts control.HandlerOptions) *testServer {
	t.Helper()
	b := newFakeBackend()
	h := control.NewHandler(b, opts)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return &testServer{b: b, h: h, srv: srv, wsURL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/control"}
}

// dial connects a client that is closed when the test ends.
func (ts *testServer) dial(t *testing.T, opts *control.DialOptions) *control.Client {
	t.Helper()
	c, err := control.Dial(ctx(t), ts.wsURL, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctx returns a context that bounds a test's waits (a failure, not a
// synchronisation: nothing waits for it to expire when all goes well).
func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var clientAddr = netip.MustParseAddrPort("127.0.0.1:5000")

// binding builds an inbound Binding request from clientAddr.
func binding() *faults.Packet {
	m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	return &faults.Packet{Data: m.Raw, Dir: faults.In, Transport: faults.UDP, Client: clientAddr}
}

// decide runs a fresh Binding request through the engine.
func (ts *testServer) decide() faults.Verdict { return ts.b.eng.Decide(binding()) }

// rule403 is the reference scenario's rule.
func rule403(id string) faults.Rule {
	return faults.Rule{
		ID:     id,
		Labels: map[string]string{"test": "control"},
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	}
}

// recv returns the next event of s, failing the test after a bound.
func recv(t *testing.T, s *control.Subscription) control.Event {
	t.Helper()
	select {
	case ev, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return control.Event{}
}

// codeOf returns the control error code of err, failing when there is none.
func codeOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want a control error")
	}
	code := control.ErrorCode(err)
	if code == "" {
		t.Fatalf("got error %v, want a *control.Error", err)
	}
	return code
}

func (b *fakeBackend) RotateNonces() uint64 { return 1 }

func (b *fakeBackend) CloseConnection(context.Context, string) error {
	return control.ErrUnknownAllocation
}
