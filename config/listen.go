package config

import (
	"net"
	"net/netip"
	"strconv"
)

// listenAddr is one address serve listens on, as checked.
type listenAddr struct {
	key, addr, host string
	port            int
}

// listen checks an address serve will pass to net.Listen("tcp", …) and
// returns it, or nil when it is refused. Refused is what serve refuses or
// would bind other than meant: no port ("127.0.0.1" fails at start; an
// empty port, "127.0.0.1:" or ":", listens on whatever port the kernel
// picks, which no agent or scraper can know); a service name ("ssh",
// "http"), which net.Listen looks up in the host's /etc/services and its
// own short list, so it binds on one host and fails at start on another;
// a port beyond 65535. Port 0 (any free port) is accepted as written.
func (r *reader) listen(key, addr string) *listenAddr {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		r.fail(key, "want HOST:PORT, got %q", addr)
		return nil
	}
	if port == "" {
		r.fail(key, "no port in %q: want HOST:PORT", addr)
		return nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		if _, numErr := strconv.ParseUint(port, 10, 64); numErr == nil {
			r.fail(key, "port %s in %q is out of range 0..65535", port, addr)
		} else {
			r.fail(key, "want a port number, got %q in %q (service names are not looked up)", port, addr)
		}
		return nil
	}
	return &listenAddr{key: key, addr: addr, host: host, port: int(n)}
}

// checkListenConflicts refuses two listeners on one port of one address:
// the second fails at start with "address already in use". Host names are
// not resolved.
func (r *reader) checkListenConflicts(addrs []*listenAddr) {
	for i, a := range addrs {
		if a == nil || a.port == 0 {
			continue
		}
		for _, b := range addrs[:i] {
			if b != nil && b.port == a.port && sameAddress(a.host, b.host) {
				r.fail(a.key, "%q takes the port %s uses (%q)", a.addr, b.key, b.addr)
				break
			}
		}
	}
}

// sameAddress reports whether listeners on hosts h1 and h2 with one port
// collide: the same host, or one takes the port on every address. An
// empty host or "::" does so for IPv4 and IPv6 (Go listens dual-stack),
// 0.0.0.0 for IPv4 only.
func sameAddress(h1, h2 string) bool {
	a1, err1 := netip.ParseAddr(h1)
	a2, err2 := netip.ParseAddr(h2)
	every := func(h string, a netip.Addr, err error) bool {
		return h == "" || err == nil && a.IsUnspecified() && a.Is6()
	}
	every4 := func(a netip.Addr, err error) bool { return err == nil && a.IsUnspecified() && a.Is4() }
	is4 := func(a netip.Addr, err error) bool { return err == nil && a.Unmap().Is4() }
	switch {
	case h1 == h2, every(h1, a1, err1), every(h2, a2, err2):
		return true
	case every4(a1, err1):
		return is4(a2, err2)
	case every4(a2, err2):
		return is4(a1, err1)
	}
	return false
}
