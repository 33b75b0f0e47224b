package config

import "crypto/tls"

// listenerTLS checks a listener's certificate settings: they belong to tls
// listeners only, come as a pair, and load.
func (v *validator) listenerTLS(field string, l Listener) {
	if l.CertFile == "" && l.KeyFile == "" {
		return
	}
	if l.Transport != "tls" {
		v.add(field+".cert_file", "cert_file and key_file apply to transport \"tls\" only, not %q", l.Transport)
		return
	}
	switch {
	case l.CertFile == "":
		v.add(field+".cert_file", "key_file is set: cert_file must be set too (or neither, for a generated self-signed certificate)")
	case l.KeyFile == "":
		v.add(field+".key_file", "cert_file is set: key_file must be set too (or neither, for a generated self-signed certificate)")
	default:
		if _, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile); err != nil {
			v.add(field+".cert_file", "cannot load the certificate and key: %v", err)
		}
	}
}

// socketKind is the kind of socket a transport binds: a tls listener is a
// TCP socket, so it cannot share an address with a tcp one.
func socketKind(transport string) string {
	if transport == "tls" {
		return "tcp"
	}
	return transport
}
