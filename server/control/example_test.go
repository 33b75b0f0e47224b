package control_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
	"github.com/stunfault/stunfault/server/webhook"
)

// engineOnly is the smallest Backend: an engine, no webhooks.
type engineOnly struct{ eng *faults.Engine }

func (b engineOnly) Engine() *faults.Engine            { return b.eng }
func (b engineOnly) Clock() faults.Clock               { return faults.SystemClock{} }
func (b engineOnly) Allocations() []control.Allocation { return nil }
func (b engineOnly) ExpireAllocations(context.Context, control.AllocationSelector) ([]control.Allocation, error) {
	return nil, control.ErrUnknownAllocation
}
func (b engineOnly) ExpirePermissions(context.Context, control.PermissionSelector) ([]control.ExpiredPermission, error) {
	return nil, control.ErrUnknownAllocation
}
func (b engineOnly) ExpireChannels(context.Context, control.ChannelSelector) ([]control.ExpiredChannel, error) {
	return nil, control.ErrUnknownAllocation
}
func (b engineOnly) Hello() control.Hello { return control.Hello{Version: "example"} }
func (b engineOnly) Stats() control.Stats { return control.Stats{} }
func (b engineOnly) SetWebhook(context.Context, string, control.WebhookSettings) error {
	return webhook.ErrUnknownWebhook
}

// Arm a 403 on Binding over the control socket, see the very next request
// fail, and disarm it. A running stunfault serves the same socket at
// ws://127.0.0.1:8478/control.
func ExampleClient_AddRule() {
	eng := faults.NewEngine(faults.EngineOptions{Seed: 1})
	h := control.NewHandler(engineOnly{eng}, control.HandlerOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	ctx := context.Background()
	c, err := control.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/control", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	rule, rev, err := c.AddRule(ctx, faults.Rule{
		ID:     "screenpop-403",
		Match:  faults.Match{Methods: []string{"binding"}, Classes: []string{"request"}},
		Action: faults.Action{Type: "error", Code: 403, Reason: "Forbidden"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rule.ID, "armed at revision", rev)

	decide := func() faults.Verdict {
		m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		return eng.Decide(&faults.Packet{Data: m.Raw, Dir: faults.In, Transport: faults.UDP,
			Client: netip.MustParseAddrPort("127.0.0.1:5000")})
	}
	v := decide() // no sleep: the reply came after the packet path switched
	fmt.Println(v.Kind, v.Action.Code, v.Action.Reason)

	if _, err := c.DisableRule(ctx, rule.ID); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(decide().Kind)

	_, _, err = c.AddRule(ctx, faults.Rule{Match: faults.Match{Methods: []string{"bindng"}}, Action: faults.Action{Type: "drop"}})
	var ce *control.Error
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Field)
	}
	// Output:
	// screenpop-403 armed at revision 1
	// error 403 Forbidden
	// pass
	// invalid_rule match.methods[0]
}

func (b engineOnly) RotateNonces() uint64 { return 1 }

func (b engineOnly) CloseConnection(context.Context, string) error {
	return control.ErrUnknownAllocation
}
