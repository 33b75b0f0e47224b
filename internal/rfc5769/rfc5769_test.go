package rfc5769_test

import (
	"testing"

	"github.com/pion/stun/v4"

	"github.com/stunfault/stunfault/internal/rfc5769"
)

// The vectors are intact: each decodes, and its FINGERPRINT checks.
func TestVectorsDecode(t *testing.T) {
	for i, raw := range rfc5769.All() {
		m := &stun.Message{Raw: append([]byte(nil), raw...)}
		if err := m.Decode(); err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if m.Contains(stun.AttrFingerprint) {
			if err := stun.Fingerprint.Check(m); err != nil {
				t.Errorf("vector %d: FINGERPRINT: %v", i, err)
			}
		}
	}
}
