package mutate_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/internal/rfc5769"
	"github.com/stunfault/stunfault/server/internal/mutate"
)

func bindingSuccess() []byte {
	return stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: []byte{127, 0, 0, 1}, Port: 5000},
		stun.NewSoftware("pion"), stun.Fingerprint).Raw
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	in := bindingSuccess()
	orig := append([]byte(nil), in...)
	for _, n := range []int{-1, 0, 7, 20, len(in), len(in) + 10} {
		got := mutate.Truncate(in, n)
		want := min(max(n, 0), len(in))
		if len(got) != want || !bytes.Equal(got, in[:want]) {
			t.Errorf("Truncate(%d) = %d bytes, want the first %d", n, len(got), want)
		}
	}
	if !bytes.Equal(in, orig) {
		t.Error("Truncate modified its input")
	}
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target  string
		count   int
		checkFn func(t *testing.T, out []byte)
	}{
		{mutate.TargetHeader, 1, func(t *testing.T, out []byte) {
			if stun.IsMessage(out) {
				t.Error("header corruption still looks like STUN")
			}
		}},
		{mutate.TargetFingerprint, 4, func(t *testing.T, out []byte) {
			m := &stun.Message{Raw: out}
			if err := m.Decode(); err != nil {
				t.Fatalf("fingerprint corruption broke decoding: %v", err)
			}
			if err := stun.Fingerprint.Check(m); err == nil {
				t.Error("FINGERPRINT still checks")
			}
		}},
		{mutate.TargetAttribute, 2, func(t *testing.T, out []byte) {
			m := &stun.Message{Raw: out}
			if err := m.Decode(); err != nil {
				t.Fatalf("attribute corruption broke decoding: %v", err)
			}
			// The value is wrong, not undecodable: clients take it as an
			// address.
			var a stun.XORMappedAddress
			if err := a.GetFrom(m); err != nil {
				t.Fatalf("XOR-MAPPED-ADDRESS no longer decodes: %v", err)
			}
			if a.Port == 5000 && a.IP.String() == "127.0.0.1" {
				t.Error("first attribute unchanged")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			in := bindingSuccess()
			orig := append([]byte(nil), in...)
			out := mutate.Corrupt(in, tt.target, tt.count)
			if !bytes.Equal(in, orig) {
				t.Fatal("Corrupt modified its input")
			}
			diff := 0
			for i := range out {
				if out[i] != in[i] {
					diff++
				}
			}
			if diff != tt.count {
				t.Errorf("%d bytes differ, want %d", diff, tt.count)
			}
			tt.checkFn(t, out)
		})
	}
	t.Run("short input", func(t *testing.T) {
		for _, b := range [][]byte{nil, {1}, {0, 1, 0}} {
			out := mutate.Corrupt(b, mutate.TargetFingerprint, 3)
			if len(out) != len(b) {
				t.Errorf("Corrupt(%x) changed the length", b)
			}
		}
	})
}

func TestMappedAddress(t *testing.T) {
	t.Parallel()
	for _, want := range []string{"203.0.113.7:40000", "[2001:db8::1]:3478"} {
		t.Run(want, func(t *testing.T) {
			in := bindingSuccess()
			out, err := mutate.MappedAddress(in, netip.MustParseAddrPort(want))
			if err != nil {
				t.Fatal(err)
			}
			m := &stun.Message{Raw: out}
			if err := m.Decode(); err != nil {
				t.Fatal(err)
			}
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Errorf("FINGERPRINT: %v", err)
			}
			var a stun.XORMappedAddress
			if err := a.GetFrom(m); err != nil {
				t.Fatal(err)
			}
			if got := netip.AddrPortFrom(netip.MustParseAddr(a.IP.String()), uint16(a.Port)).String(); got != want {
				t.Errorf("XOR-MAPPED-ADDRESS = %s, want %s", got, want)
			}
			var sw stun.Software
			if err := sw.GetFrom(m); err != nil || sw.String() != "pion" {
				t.Errorf("SOFTWARE lost: %q %v", sw, err)
			}
		})
	}
	t.Run("not a Binding success", func(t *testing.T) {
		for _, b := range [][]byte{rfc5769.Request, nil, []byte("junk")} {
			if _, err := mutate.MappedAddress(b, netip.MustParseAddrPort("1.2.3.4:5")); !errors.Is(err, mutate.ErrNotBindingSuccess) {
				t.Errorf("got %v, want ErrNotBindingSuccess", err)
			}
		}
	})
}

// FuzzMutate: none of the mutations panics on bytes from the network, and
// none changes its input.
func FuzzMutate(f *testing.F) {
	for _, v := range rfc5769.All() {
		f.Add(v, 3)
	}
	f.Add(bindingSuccess(), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		orig := append([]byte(nil), b...)
		_ = mutate.Truncate(b, n)
		for _, target := range []string{mutate.TargetHeader, mutate.TargetAttribute, mutate.TargetFingerprint} {
			if out := mutate.Corrupt(b, target, n%64); len(out) != len(b) {
				t.Fatalf("Corrupt changed the length")
			}
		}
		_, _ = mutate.MappedAddress(b, netip.MustParseAddrPort("127.0.0.1:1"))
		if !bytes.Equal(b, orig) {
			t.Fatal("input modified")
		}
	})
}
