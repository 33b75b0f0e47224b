package stunerror_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/server/internal/stunerror"
)

const (
	user  = "user"
	realm = "stunfault.test"
	pass  = "pass"
)

var key = stun.NewLongTermIntegrity(user, realm, pass)

func bindingRequest() *stun.Message {
	return stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
}

func signedAllocate() *stun.Message {
	return stun.MustBuild(stun.TransactionID,
		stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(user), stun.NewRealm(realm), stun.NewNonce("n0nce"),
		key, stun.Fingerprint)
}

func decode(t *testing.T, raw []byte) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Errorf("FINGERPRINT: %v", err)
	}
	return m
}

func TestBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		req        *stun.Message
		spec       stunerror.Spec
		wantReason string
		wantMI     string // "valid", "invalid" or "absent"
		check      func(t *testing.T, m *stun.Message)
	}{
		{
			name: "403 on Binding with configured reason",
			req:  bindingRequest(), spec: stunerror.Spec{Code: 403, Reason: "Forbidden by rule", Software: "stunfault"},
			wantReason: "Forbidden by rule", wantMI: "absent",
			check: func(t *testing.T, m *stun.Message) {
				var sw stun.Software
				if err := sw.GetFrom(m); err != nil || sw.String() != "stunfault" {
					t.Errorf("SOFTWARE = %q, %v", sw, err)
				}
			},
		},
		{
			name: "default reason", req: bindingRequest(), spec: stunerror.Spec{Code: 486},
			wantReason: "Allocation Quota Reached", wantMI: "absent",
		},
		{
			name: "signed request gets a valid MESSAGE-INTEGRITY", req: signedAllocate(),
			spec:       stunerror.Spec{Code: 403, Key: key},
			wantReason: "Forbidden", wantMI: "valid",
		},
		{
			name: "integrity none", req: signedAllocate(),
			spec:       stunerror.Spec{Code: 403, Key: key, Integrity: stunerror.IntegrityNone},
			wantReason: "Forbidden", wantMI: "absent",
		},
		{
			name: "integrity bad", req: signedAllocate(),
			spec:       stunerror.Spec{Code: 403, Key: key, Integrity: stunerror.IntegrityBad},
			wantReason: "Forbidden", wantMI: "invalid",
		},
		{
			name: "unsigned request stays unsigned", req: bindingRequest(),
			spec:       stunerror.Spec{Code: 500, Key: key},
			wantReason: "Server Error", wantMI: "absent",
		},
		{
			name: "401 carries REALM and NONCE and no integrity", req: signedAllocate(),
			spec:       stunerror.Spec{Code: 401, Realm: realm, Nonce: "abc", Key: key},
			wantReason: "Unauthorized", wantMI: "absent",
			check: func(t *testing.T, m *stun.Message) {
				var r stun.Realm
				var n stun.Nonce
				if r.GetFrom(m) != nil || n.GetFrom(m) != nil || r.String() != realm || n.String() != "abc" {
					t.Errorf("REALM %q NONCE %q, want %q and abc", r, n, realm)
				}
			},
		},
		{
			name: "438 carries NONCE", req: signedAllocate(),
			spec:       stunerror.Spec{Code: 438, Realm: realm, Nonce: "fresh"},
			wantReason: "Stale Nonce", wantMI: "absent",
			check: func(t *testing.T, m *stun.Message) {
				var n stun.Nonce
				if err := n.GetFrom(m); err != nil || n.String() != "fresh" {
					t.Errorf("NONCE = %q, %v", n, err)
				}
			},
		},
		{
			name: "300 carries ALTERNATE-SERVER", req: bindingRequest(),
			spec:       stunerror.Spec{Code: 300, Alternate: netip.MustParseAddrPort("127.0.0.2:3479")},
			wantReason: "Try Alternate", wantMI: "absent",
			check: func(t *testing.T, m *stun.Message) {
				var a stun.AlternateServer
				if err := a.GetFrom(m); err != nil || a.IP.String() != "127.0.0.2" || a.Port != 3479 {
					t.Errorf("ALTERNATE-SERVER = %s:%d, %v", a.IP, a.Port, err)
				}
			},
		},
		{
			name: "420 lists unknown comprehension-required attributes",
			req: stun.MustBuild(stun.TransactionID, stun.BindingRequest,
				stun.RawAttribute{Type: 0x7777, Value: []byte{1, 2, 3, 4}}),
			spec:       stunerror.Spec{Code: 420},
			wantReason: "Unknown Attribute", wantMI: "absent",
			check: func(t *testing.T, m *stun.Message) {
				var u stun.UnknownAttributes
				if err := u.GetFrom(m); err != nil || len(u) != 1 || u[0] != 0x7777 {
					t.Errorf("UNKNOWN-ATTRIBUTES = %v, %v; want [0x7777]", u, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := stunerror.Build(tt.req.Raw, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, raw)
			if m.TransactionID != tt.req.TransactionID {
				t.Errorf("transaction ID changed")
			}
			if m.Type.Method != tt.req.Type.Method || m.Type.Class != stun.ClassErrorResponse {
				t.Errorf("type = %s, want %s error response", m.Type, tt.req.Type.Method)
			}
			var ec stun.ErrorCodeAttribute
			if err := ec.GetFrom(m); err != nil {
				t.Fatal(err)
			}
			if int(ec.Code) != tt.spec.Code || string(ec.Reason) != tt.wantReason {
				t.Errorf("ERROR-CODE = %d %q, want %d %q", ec.Code, ec.Reason, tt.spec.Code, tt.wantReason)
			}
			switch mi := key.Check(m); {
			case tt.wantMI == "absent" && m.Contains(stun.AttrMessageIntegrity):
				t.Errorf("MESSAGE-INTEGRITY present, want none")
			case tt.wantMI == "valid" && mi != nil:
				t.Errorf("MESSAGE-INTEGRITY: %v, want valid", mi)
			case tt.wantMI == "invalid" && (mi == nil || !m.Contains(stun.AttrMessageIntegrity)):
				t.Errorf("MESSAGE-INTEGRITY check = %v, want present and invalid", mi)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		req  []byte
		code int
	}{
		"not STUN":      {[]byte("GET / HTTP/1.1\r\n\r\n"), 403},
		"empty":         {nil, 403},
		"a response":    {stun.MustBuild(stun.TransactionID, stun.BindingSuccess).Raw, 403},
		"an indication": {stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication)).Raw, 403},
		"code 200":      {bindingRequest().Raw, 200},
		"truncated":     {bindingRequest().Raw[:24], 403},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := stunerror.Build(tt.req, stunerror.Spec{Code: tt.code}); err == nil {
				t.Fatal("Build succeeded, want an error")
			} else if tt.code == 403 && !errors.Is(err, stunerror.ErrNotRequest) {
				t.Errorf("err = %v, want ErrNotRequest", err)
			}
		})
	}
}

// FuzzBuild feeds arbitrary bytes as the request: Build must never panic,
// and whatever it returns must decode as an error response to it.
func FuzzBuild(f *testing.F) {
	f.Add(bindingRequest().Raw, 403)
	f.Add(signedAllocate().Raw, 401)
	f.Add(signedAllocate().Raw, 420)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 300)
	f.Fuzz(func(t *testing.T, req []byte, code int) {
		raw, err := stunerror.Build(req, stunerror.Spec{
			Code: code, Key: key, Realm: realm, Nonce: "n",
			Alternate: netip.MustParseAddrPort("127.0.0.1:1"), Software: "fuzz",
		})
		if err != nil {
			return
		}
		m := &stun.Message{Raw: raw}
		if err := m.Decode(); err != nil {
			t.Fatalf("Build returned undecodable bytes: %v", err)
		}
		if m.Type.Class != stun.ClassErrorResponse {
			t.Fatalf("Build returned a %s", m.Type)
		}
	})
}

// BenchmarkAppend measures building an injected 403 for an unsigned Binding
// and a signed Allocate into a reused buffer.
func BenchmarkAppend(b *testing.B) {
	for name, req := range map[string][]byte{"binding": bindingRequest().Raw, "signed": signedAllocate().Raw} {
		b.Run(name, func(b *testing.B) {
			spec := stunerror.Spec{Code: 403, Reason: "Forbidden", Software: "stunfault", Key: key}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = stunerror.Append(buf[:0], req, spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
