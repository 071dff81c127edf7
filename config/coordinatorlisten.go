package config

import (
	"net"
	"net/netip"
)

// checkCoordinatorListen refuses to serve the built-in coordinator in clear
// text beyond this host: agents send their machine secrets, and the
// registration secret, in every request. coordinator_listen must be a
// loopback address, or coordinator_tls_cert must be set, or the operator
// says the network is trusted with coordinator_insecure_listen: true.
func (r *reader) checkCoordinatorListen(c *Config) {
	c.CoordinatorInsecureListen = r.boolean("coordinator_insecure_listen")
	if !c.EmbeddedCoordinator() || c.CoordinatorTLSCert != "" || c.CoordinatorInsecureListen {
		return
	}
	host, _, err := net.SplitHostPort(c.CoordinatorListen)
	if err != nil {
		r.fail("coordinator_listen", "want HOST:PORT, got %q", c.CoordinatorListen)
		return
	}
	if isLoopbackHost(host) {
		return
	}
	r.fail("coordinator_listen", "%q is not a loopback address and coordinator_tls_cert is not set: "+
		"agents' secrets would cross the network in clear text; set coordinator_tls_cert and "+
		"coordinator_tls_key, or coordinator_insecure_listen: true if the network is trusted",
		c.CoordinatorListen)
}

// isLoopbackHost reports whether host names only this machine: "localhost"
// or a loopback address. An empty host means every interface; other names
// are not resolved here and count as not loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
