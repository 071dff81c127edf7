//go:build linux

package tunnel

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// restoreAdmit is the checkin endpoint's peer policy widened by root: a
// restore port admits the storage unit's own user and root (the
// operator's rsync, typically run with sudo), and no other local user.
// peerSocket refuses a socket whose process closed it already (an orphan,
// which the kernel shows as root's whoever opened it). A socket this
// process holds is refused too, unless ownProcess: serve's own
// connections (an API call to a port the restore took while turku-api was
// down) must never reach the agent.
func restoreAdmit(c net.Conn, ownProcess bool) error {
	uid, inode, err := peerSocket(c)
	if err != nil {
		return err
	}
	if uid != os.Getuid() && uid != 0 {
		return fmt.Errorf("peer %v belongs to uid %d, not to us (uid %d) or root: %w", c.RemoteAddr(), uid, os.Getuid(), errOtherUser)
	}
	if ownProcess {
		return nil
	}
	switch _, err := socketHolder(inode, []int{os.Getpid()}); {
	case err == nil:
		return fmt.Errorf("peer %v: %w", c.RemoteAddr(), errOwnProcess)
	case errors.Is(err, errNotHeld):
		return nil
	default:
		return err
	}
}
