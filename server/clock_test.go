package server_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/control"
)

// [server] clock = "manual": what a test in another language does over the
// control socket, with no sleep: a rule with for expires, and a REST
// credential runs out, when clock.advance says so.
func TestManualClockOverControl(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Server.Clock = "manual"
	cfg.Auth.Secret = testSecret
	srv := startServer(t, &cfg)
	clk, ok := srv.Clock().(*faults.ManualClock)
	if !ok {
		t.Fatalf("Clock() is %T, want *faults.ManualClock", srv.Clock())
	}
	c := dialControl(t, srv.ControlURL())
	ctx := context.Background()
	conn, err := net.Dial("udp", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	before, err := c.Clock(ctx)
	if err != nil || !before.Manual || !before.Now.Equal(clk.Now()) {
		t.Fatalf("clock.get = %+v, %v; want the manual clock's time", before, err)
	}
	if _, _, err := c.AddRule(ctx, faults.Rule{ID: "brief", For: faults.Duration(30 * time.Second),
		Match: faults.Match{Methods: []string{"binding"}}, Action: faults.Action{Type: "error", Code: 403}}); err != nil {
		t.Fatal(err)
	}
	if got := bindingOutcome(t, conn); got != 403 {
		t.Fatalf("Binding with the rule on: code %d, want 403", got)
	}
	res, err := c.AdvanceClock(ctx, 29*time.Second)
	if err != nil || !res.Now.Equal(before.Now.Add(29*time.Second)) {
		t.Fatalf("clock.advance = %+v, %v; want now +29s", res, err)
	}
	if got := bindingOutcome(t, conn); got != 403 {
		t.Fatalf("Binding at +29s: code %d, want 403", got)
	}
	if _, err := c.AdvanceClock(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	if got := bindingOutcome(t, conn); got != 0 {
		t.Fatalf("Binding at +30s (rule expired): code %d, want success", got)
	}

	// A REST credential valid for a minute of the server's clock.
	user, pass := restCredential(clk.Now().Add(time.Minute), "alice")
	relay, err := newTURNClient(t, srv, "udp", user, pass).Allocate()
	if err != nil {
		t.Fatalf("Allocate with a fresh REST credential: %v", err)
	}
	relay.Close()
	if _, err := c.AdvanceClock(ctx, 61*time.Second); err != nil {
		t.Fatal(err)
	}
	relay, err = newTURNClient(t, srv, "udp", user, pass).Allocate()
	var te *stun.TurnError
	if err == nil {
		relay.Close()
		t.Fatal("Allocate with an expired REST credential succeeded, want 401")
	} else if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
		t.Fatalf("Allocate with an expired REST credential: %v, want 401", err)
	}
}

// A server on the system clock refuses clock.advance, and says how to get
// a manual one.
func TestSystemClockRefusesAdvance(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	srv := startServer(t, &cfg)
	c := dialControl(t, srv.ControlURL())
	res, err := c.Clock(context.Background())
	if err != nil || res.Manual {
		t.Fatalf("clock.get = %+v, %v; want the system clock", res, err)
	}
	if _, err := c.AdvanceClock(context.Background(), time.Second); control.ErrorCode(err) != control.CodeClockNotManual {
		t.Fatalf("clock.advance = %v, want clock_not_manual", err)
	}
}
