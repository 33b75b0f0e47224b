package server

import (
	"net/netip"
	"testing"
)

// TestAddrCache checks that the cache hands out the sender's own address,
// the same pointer again while the sender keeps its slot, and that two
// senders hashed to one pair both keep theirs.
func TestAddrCache(t *testing.T) {
	tests := []struct {
		name string
		ap   netip.AddrPort
	}{
		{"ipv4", netip.MustParseAddrPort("127.0.0.1:50000")},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::1]:3478")},
		{"ipv6 with a zone", netip.MustParseAddrPort("[fe80::1%2]:3478")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newAddrCache(relayAddrBits)
			ua := c.get(tt.ap)
			if ua.AddrPort() != tt.ap || ua.Zone != tt.ap.Addr().Zone() {
				t.Fatalf("get(%v) = %v", tt.ap, ua)
			}
			if again := c.get(tt.ap); again != ua {
				t.Errorf("get(%v) again made a new address", tt.ap)
			}
		})
	}
	if c := new(addrCache); c.get(netip.AddrPort{}) != nil {
		t.Error("the zero AddrPort gave an address")
	}

	// Many senders through the small cache: any two alternating keep
	// their addresses, whichever pair they hash to.
	c := newAddrCache(relayAddrBits)
	for port := uint16(1); port < 200; port++ {
		a := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)
		b := netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port+1000)
		ua, ub := c.get(a), c.get(b)
		if c.get(a) != ua || c.get(b) != ub {
			t.Fatalf("senders %v and %v pushed each other out", a, b)
		}
	}
}
