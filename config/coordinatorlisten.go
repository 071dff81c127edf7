package config

import "net/netip"

// checkCoordinatorListen checks coordinator_listen when the built-in
// coordinator serves (no api_url) and returns it, or nil. It refuses to
// serve the coordinator in clear text beyond this host: agents send their
// machine secrets, and the registration secret, in every request.
// coordinator_listen must be a loopback address, or coordinator_tls_cert
// must be set, or the operator says the network is trusted with
// coordinator_insecure_listen: true.
func (r *reader) checkCoordinatorListen(c *Config) *listenAddr {
	if !c.EmbeddedCoordinator() {
		return nil
	}
	l := r.listen("coordinator_listen", c.CoordinatorListen)
	if l == nil || c.CoordinatorTLSCert != "" || c.CoordinatorInsecureListen || isLoopbackHost(l.host) {
		return l
	}
	r.fail("coordinator_listen", "%q is not a loopback address and coordinator_tls_cert is not set: "+
		"agents' secrets would cross the network in clear text; set coordinator_tls_cert and "+
		"coordinator_tls_key, or coordinator_insecure_listen: true if the network is trusted",
		c.CoordinatorListen)
	return l
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
