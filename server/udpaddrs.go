package server

import (
	"net"
	"net/netip"
)

// addrCacheSize is how many senders an addrCache keeps: 256 entries of an
// address and a pointer, about 10 KiB per read loop.
const addrCacheSize = 256

// addrCache turns the senders of batched reads into the *net.UDPAddr pion
// takes from ReadFrom without allocating one per datagram: it keeps the last
// address made for each of addrCacheSize slots, chosen by a hash of the
// sender. A sender whose slot holds another costs one allocation, as a plain
// ReadFrom does for every datagram. The addresses it hands out are shared and
// never changed: pion keeps them (allocations' 5-tuples) and only reads them.
// Only pion's read loop uses it.
type addrCache [addrCacheSize]struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

// get returns the *net.UDPAddr for ap (nil for the zero AddrPort).
func (c *addrCache) get(ap netip.AddrPort) *net.UDPAddr {
	if !ap.IsValid() {
		return nil
	}
	ip := ap.Addr()
	a16 := ip.As16()
	h := uint32(ap.Port()) ^ uint32(a16[12])<<24 ^ uint32(a16[13])<<16 ^ uint32(a16[14])<<8 ^ uint32(a16[15])
	e := &c[(h*0x9E3779B1)>>24] // Fibonacci hashing onto 8 bits
	if e.ua == nil || e.ap != ap {
		e.ap = ap
		e.ua = &net.UDPAddr{IP: ip.AsSlice(), Port: int(ap.Port()), Zone: ip.Zone()}
	}
	return e.ua
}
