package main

import (
	"net"
	"strings"
	"testing"

	"github.com/pion/turn/v5"

	"github.com/stunfault/stunfault/server/servertest"
)

// `stunfault allocations` lists a pion client's allocation and expires it.
func TestCLIAllocations(t *testing.T) {
	srv := servertest.New(t)
	url := srv.ControlURL()
	if out, err := runCmd(t, "allocations", "-control", url); err != nil || !strings.Contains(out, "no allocations") {
		t.Fatalf("allocations with none: %v\n%s", err, out)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := srv.TURNAddr("udp").String()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Username: "user", Password: "pass",
		Realm: srv.Config().Server.Realm, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	out, err := runCmd(t, "allocations", "list", "-control", url)
	if err != nil || !strings.Contains(out, conn.LocalAddr().String()) || !strings.Contains(out, relay.LocalAddr().String()) || !strings.Contains(out, " user ") {
		t.Errorf("allocations list: %v\n%s, want the client %s, its relay %s and user", err, out, conn.LocalAddr(), relay.LocalAddr())
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
		t.Fatal(err)
	}
	out, err = runCmd(t, "allocations", "expire", "-control", url, "-username", "user", "-peer", "127.0.0.1")
	if err != nil || !strings.Contains(out, "expired 1 permission") || !strings.Contains(out, "permission for 127.0.0.1") {
		t.Errorf("allocations expire -peer: %v\n%s", err, out)
	}
	if l := srv.Allocations(); len(l) != 1 || len(l[0].Permissions) != 0 {
		t.Errorf("after expire -peer: %+v, want the allocation without its permission", l)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"expire"}, "exactly one of"},
		{[]string{"expire", "-all", "-username", "user"}, "exactly one of"},
		{[]string{"expire", "-username", "nobody"}, "unknown_allocation"},
		{[]string{"list", "-all"}, "are for expire"},
		{[]string{"list", "-peer", "127.0.0.1"}, "are for expire"},
		{[]string{"expire", "-all", "-peer", "127.0.0.1", "-channel", "0x4000"}, "not both"},
		{[]string{"expire", "-all", "-channel", "5"}, "want a channel number"},
		{[]string{"expire", "-all", "-channel", "0x4000"}, "unknown_allocation"},
		{[]string{"expire", "-all", "-peer", "127.0.0.9"}, "unknown_allocation"},
		{[]string{"expire", "-all", "-peer", "localhost"}, "bad_request"},
		{[]string{"drop"}, "unknown subcommand"},
	} {
		out, err := runCmd(t, append([]string{"allocations", "-control", url}, tt.args...)...)
		if exitCode(err) != 2 || !strings.Contains(out+errString(err), tt.want) {
			t.Errorf("allocations %v: exit %d, %v\n%s; want exit 2 and %q", tt.args, exitCode(err), err, out, tt.want)
		}
	}
	if out, err := runCmd(t, "allocations", "rotate-nonces", "-control", url); err != nil || !strings.Contains(out, "rotation 1") {
		t.Errorf("allocations rotate-nonces: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "allocations", "close", "-control", url, "-client", "127.0.0.1:1"); exitCode(err) != 2 || !strings.Contains(out+errString(err), "unknown_allocation") {
		t.Errorf("allocations close unknown: exit %d, %v\n%s", exitCode(err), err, out)
	}
	out, err = runCmd(t, "allocations", "expire", "-control", url, "-client", conn.LocalAddr().String())
	if err != nil || !strings.Contains(out, "expired 1 allocation") {
		t.Errorf("allocations expire -client: %v\n%s", err, out)
	}
	if n := len(srv.Allocations()); n != 0 {
		t.Errorf("%d allocations after expire, want 0", n)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
