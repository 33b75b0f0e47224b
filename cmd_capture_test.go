package main

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/faults"
	"github.com/stunfault/stunfault/server/servertest"
)

// stunfault capture writes the server's trace as pcapng, filtered by the
// journal's query flags; bad flags are the user's to fix.
func TestCLICapture(t *testing.T) {
	srv := servertest.New(t)
	if _, err := srv.Faults().Add(faults.Rule{ID: "r403", Match: faults.Match{Methods: []string{"binding"}},
		Action: faults.Action{Type: "error", Code: 403}}); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("udp4", srv.STUNAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1500)); err != nil {
		t.Fatalf("no answer: %v", err)
	}

	file := filepath.Join(t.TempDir(), "c.pcapng")
	out, err := runCmd(t, "capture", "-control", srv.ControlURL(), "-o", file, "-rule", "r403")
	if err != nil || !strings.Contains(out, "wrote ") {
		t.Fatalf("capture: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil || len(b) < 12 || binary.LittleEndian.Uint32(b) != 0x0A0D0D0A || !bytes.Contains(b, []byte("rule r403: error 403")) {
		t.Fatalf("capture file: %d bytes (%v), want pcapng with the rule in a comment", len(b), err)
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		cmd := exec.Command(tshark, "-r", file, "-T", "fields", "-e", "stun.type")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		got, err := cmd.Output()
		if err != nil || strings.Fields(string(got))[0] != "0x0001" {
			t.Errorf("tshark: %v, got %q, want the Binding request first", err, got)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capture", "-control", srv.ControlURL()}, "-o FILE is required"},
		{[]string{"capture", "-control", srv.ControlURL(), "-o", file, "-method", "bindng"}, `unknown value "bindng"`},
		{[]string{"capture", "-control", srv.ControlURL(), "-o", file, "-d", "11m"}, "want a duration from 0 to 10m0s"},
	} {
		out, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(out+err.Error(), tc.want) {
			t.Errorf("%v: got %v\n%s, want an error saying %q", tc.args, err, out, tc.want)
		}
	}
}
