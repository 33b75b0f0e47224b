package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// CheckHTTPLoopback returns an error unless the host of target is loopback
// (127.0.0.0/8, ::1 or "localhost"), resolving a name to check every
// address it has: call it before Run so that load is not pointed at
// someone else's server by accident.
func CheckHTTPLoopback(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("bad target URL: %w", err)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return fmt.Errorf("cannot check that %q is loopback: %w", host, err)
		}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("target %s (%s) is not loopback", host, a)
		}
	}
	return nil
}
