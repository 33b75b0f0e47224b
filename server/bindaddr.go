package server

import "github.com/stunfault/stunfault/config"

// bindAddresses returns listen with each address as it is bound
// (config.BindAddress: "localhost" is 127.0.0.1, never resolved).
func bindAddresses(listen []config.Listener) []config.Listener {
	out := make([]config.Listener, len(listen))
	for i, l := range listen {
		l.Address = config.BindAddress(l.Address)
		out[i] = l
	}
	return out
}
