//go:build linux

package tunnel

import (
	"fmt"
	"net"
	"os"
)

// ownUserOrRoot is the checkin endpoint's peer policy widened by root: a
// restore port admits the storage unit's own user and root (the
// operator's rsync, typically run with sudo), and no other local user.
// peerUID refuses a socket whose process closed it already (an orphan,
// which /proc/net/tcp shows as root's whoever opened it).
func ownUserOrRoot(c net.Conn) error {
	uid, err := peerUID(c)
	if err != nil {
		return err
	}
	if uid != os.Getuid() && uid != 0 {
		return fmt.Errorf("peer %v belongs to uid %d, not to us (uid %d) or root", c.RemoteAddr(), uid, os.Getuid())
	}
	return nil
}
