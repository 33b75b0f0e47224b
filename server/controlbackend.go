package server

import (
	"context"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/webhook"
)

// controlBackend is what the control socket (package control) drives: the
// engine, the webhooks and the server's numbers.
type controlBackend struct{ s *Server }

var _ control.Backend = controlBackend{}

func (b controlBackend) Engine() *faults.Engine { return b.s.eng }

func (b controlBackend) Clock() faults.Clock { return b.s.clk }

func (b controlBackend) Allocations() []control.Allocation { return b.s.Allocations() }

func (b controlBackend) RotateNonces() uint64 { return b.s.RotateNonces() }

func (b controlBackend) CloseConnection(ctx context.Context, client string) error {
	return b.s.CloseConnection(ctx, client)
}

func (b controlBackend) ExpireAllocations(ctx context.Context, sel control.AllocationSelector) ([]control.Allocation, error) {
	return b.s.ExpireAllocations(ctx, sel)
}

func (b controlBackend) ExpirePermissions(ctx context.Context, sel control.PermissionSelector) ([]control.ExpiredPermission, error) {
	return b.s.ExpirePermissions(ctx, sel)
}

func (b controlBackend) ExpireChannels(ctx context.Context, sel control.ChannelSelector) ([]control.ExpiredChannel, error) {
	return b.s.ExpireChannels(ctx, sel)
}

func (b controlBackend) Hello() control.Hello {
	return control.Hello{
		Version:      BuildVersion().Version,
		Seed:         b.s.seed,
		Capabilities: []string{"udp", "tcp", "turn", "webhooks", "scenarios", "machines"},
	}
}

func (b controlBackend) Stats() control.Stats {
	var st control.Stats
	b.s.mu.Lock()
	guards, udp := b.s.guards, b.s.udp
	if b.s.turn != nil {
		n := b.s.turn.AllocationCount()
		st.Allocations = &n
	}
	b.s.mu.Unlock()
	for _, l := range b.s.Listeners() {
		ls := control.ListenerStats{Transport: l.Transport, Address: l.Addr.String()}
		for _, g := range guards {
			if g.lis.Transport == l.Transport && g.lis.Addr == l.Addr {
				ls.TCP = &control.TCPStats{Open: g.open.Load(), Refused: g.refused.Load(), TimedOut: g.timedOut.Load()}
			}
		}
		for _, u := range udp {
			if u.lis.Transport == l.Transport && u.lis.Addr == l.Addr {
				for _, c := range u.loops {
					ls.Loops = append(ls.Loops, control.LoopStats{Datagrams: c.datagrams.Load()})
				}
			}
		}
		st.Listeners = append(st.Listeners, ls)
	}
	st.Intercept = b.s.ic.stats()
	st.Webhooks = map[string]control.WebhookStats{}
	for name, hs := range b.s.hub.Stats() {
		st.Webhooks[name] = control.WebhookStats{Inflight: hs.Inflight, Pending: hs.Pending, Mode: hs.Mode}
	}
	return st
}

func (b controlBackend) SetWebhook(_ context.Context, name string, s control.WebhookSettings) error {
	err := b.s.hub.Set(name, webhook.Settings{
		Latency:          s.Latency,
		Mode:             s.Mode,
		Status:           s.Status,
		SyntheticPending: s.SyntheticPending,
	})
	return err
}
