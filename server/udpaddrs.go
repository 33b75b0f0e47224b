package server

import (
	"net"
	"net/netip"
)

// Sizes of the address caches, in bits: 256 slots (about 10 KiB) for a
// listener's read loop, which hears from many clients; 16 (8 pairs) for a
// relay socket, which hears from its few peers.
const (
	listenerAddrBits = 8
	relayAddrBits    = 4
)

// addrCache turns the senders of batched reads into the *net.UDPAddr pion
// takes from ReadFrom without allocating one per datagram: it keeps the
// addresses it made in pairs of slots chosen by a hash of the sender, the
// more recent first, so two senders never push each other out. A sender
// whose pair holds two others costs one allocation, as a plain ReadFrom does
// for every datagram. The addresses it hands out are shared and never
// changed: pion keeps them (allocations' 5-tuples) and only reads them.
// Only one goroutine (the socket's reader) uses it.
type addrCache struct {
	slots []addrSlot
	shift uint8 // 32 - log2(len(slots)/2)
}

type addrSlot struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

// newAddrCache returns a cache of 1<<bits slots.
func newAddrCache(bits uint8) addrCache {
	return addrCache{slots: make([]addrSlot, 1<<bits), shift: 32 - (bits - 1)}
}

// get returns the *net.UDPAddr for ap (nil for the zero AddrPort).
func (c *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if !ap.IsValid() {
		return nil
	}
	ip := ap.Addr()
	a16 := ip.As16()
	h := uint32(ap.Port()) ^ uint32(a16[12])<<24 ^ uint32(a16[13])<<16 ^ uint32(a16[14])<<8 ^ uint32(a16[15])
	i := (h * 0x9E3779B1) >> c.shift * 2 // Fibonacci hashing onto a pair
	pair := c.slots[i : i+2 : i+2]
	switch {
	case pair[0].ua != nil && pair[0].ap == ap:
		return pair[0].ua
	case pair[1].ua != nil && pair[1].ap == ap:
		pair[0], pair[1] = pair[1], pair[0]
		return pair[0].ua
	}
	return c.insert(pair, ap)
}

// insert makes ap's address the first of its pair, and pushes the pair's
// first out of its place into the second. Kept out of get (not inlined),
// so that a sender found in the cache runs through few cache lines.
//
//go:noinline
func (c *addrCache) insert(pair []addrSlot, ap netip.AddrPort) *net.UDPAddr {
	ip := ap.Addr()
	pair[1] = pair[0]
	pair[0] = addrSlot{ap: ap, ua: &net.UDPAddr{IP: ip.AsSlice(), Port: int(ap.Port()), Zone: ip.Zone()}}
	return pair[0].ua
}
