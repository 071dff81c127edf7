//go:build linux

package tunnel

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// ownUserOrRoot is the checkin endpoint's peer policy widened by root: a
// restore port admits the storage unit's own user and root (the
// operator's rsync, typically run with sudo), and no other local user.
// The peer socket must still have its file (a non-zero inode): a socket
// whose process closed it already is an orphan, which /proc/net/tcp shows
// as root's whoever opened it.
func ownUserOrRoot(c net.Conn) error {
	uid, inode, err := peerOwner(c)
	if err != nil {
		return err
	}
	if inode == 0 {
		return fmt.Errorf("peer %v: socket already closed (no inode), owner unknown", c.RemoteAddr())
	}
	if uid != os.Getuid() && uid != 0 {
		return fmt.Errorf("peer %v belongs to uid %d, not to us (uid %d) or root", c.RemoteAddr(), uid, os.Getuid())
	}
	return nil
}

// peerOwner returns the owner and inode of the socket at the far end of c
// (a loopback IPv4 connection) from /proc/net/tcp, as peerUID does.
func peerOwner(c net.Conn) (uid int, inode uint64, err error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return 0, 0, fmt.Errorf("peer %v: not an IPv4 TCP connection", c.RemoteAddr())
	}
	want := procAddr(remote) + " " + procAddr(local)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(fields) < 10 || fields[1]+" "+fields[2] != want {
			continue
		}
		if uid, err = strconv.Atoi(fields[7]); err != nil {
			return 0, 0, fmt.Errorf("peer %v: uid %q: %w", c.RemoteAddr(), fields[7], err)
		}
		if inode, err = strconv.ParseUint(fields[9], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("peer %v: inode %q: %w", c.RemoteAddr(), fields[9], err)
		}
		return uid, inode, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("peer %v: no socket in /proc/net/tcp", c.RemoteAddr())
}
