//go:build !linux

package tunnel

import "net"

// ownUserOrRoot cannot tell a peer's owner outside Linux; the agent's
// restore module password still guards the agent's data.
func ownUserOrRoot(net.Conn) error { return nil }
