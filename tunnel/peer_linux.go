//go:build linux

package tunnel

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// peerUID returns the owner of the TCP socket at the far end of c, which
// must be a loopback IPv4 connection: the kernel's own record of which
// user opened the connecting socket (like SO_PEERCRED for Unix sockets). Only a socket still open in some process (it has an
// inode) counts: once its owner closes it, the kernel keeps the socket as
// an orphan that shows uid 0 and inode 0, so a local user who connects,
// writes and closes at once would otherwise pass for root.
func peerUID(c net.Conn) (int, error) {
	uid, _, err := peerSocket(c)
	return uid, err
}

// peerSocket is peerUID that also returns the socket's inode, by which
// /proc/PID/fd names it ("socket:[INODE]"). It asks the kernel for that
// one socket over NETLINK_SOCK_DIAG, or, where the kernel does not answer
// those, reads /proc/net/tcp.
func peerSocket(c net.Conn) (uid int, inode uint64, err error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return 0, 0, fmt.Errorf("peer %v: not an IPv4 TCP connection", c.RemoteAddr())
	}
	if !useDiag(c) {
		return procPeerSocket(c, local, remote)
	}
	// The peer's socket has our remote as its local address and vice versa.
	u, ino, state, err := diagSocket(remote, local)
	switch {
	case errors.Is(err, diagNotFound):
		return 0, 0, fmt.Errorf("peer %v: %w (no such socket)", c.RemoteAddr(), errSocketClosed)
	case err != nil:
		return 0, 0, fmt.Errorf("peer %v: %w", c.RemoteAddr(), err)
	case ino == 0:
		// Orphaned (its owner closed it) or in TIME_WAIT: uid 0 says
		// nothing of who opened it.
		return 0, 0, fmt.Errorf("peer %v: %w (state %02X, inode 0)", c.RemoteAddr(), errSocketClosed, state)
	}
	return int(u), uint64(ino), nil
}

// procPeerSocket is peerSocket read off /proc/net/tcp.
func procPeerSocket(c net.Conn, local, remote *net.TCPAddr) (uid int, inode uint64, err error) {
	// The peer's entry has our remote as its local address and vice versa.
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
		// A socket its owner has closed is orphaned (sock_orphan): inode
		// 0, uid 0, whatever its state (FIN_WAIT1 after close, TIME_WAIT
		// later). One shut down for writing only is still its owner's.
		if fields[9] == "0" {
			return 0, 0, fmt.Errorf("peer %v: %w (state %s, inode 0)", c.RemoteAddr(), errSocketClosed, fields[3])
		}
		uid, err := strconv.Atoi(fields[7])
		if err != nil {
			return 0, 0, fmt.Errorf("peer %v: uid %q in /proc/net/tcp: %w", c.RemoteAddr(), fields[7], err)
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("peer %v: inode %q in /proc/net/tcp: %w", c.RemoteAddr(), fields[9], err)
		}
		return uid, inode, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("peer %v: %w (not in /proc/net/tcp)", c.RemoteAddr(), errSocketClosed)
}

// procAddr formats an address as /proc/net/tcp does: the IPv4 address as a
// host-order (little-endian on every Linux port we run on) 32-bit hex
// number, then the port in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(ip), a.Port)
}

// sameUser admits only connections from sockets owned by our own user:
// the rsync the backup engine starts. Other local users cannot reach an
// agent's daemon through a checkin endpoint.
func sameUser(c net.Conn) error {
	uid, err := peerUID(c)
	if err != nil {
		return err
	}
	if uid != os.Getuid() {
		return fmt.Errorf("peer %v belongs to uid %d, not to us (uid %d): %w", c.RemoteAddr(), uid, os.Getuid(), errOtherUser)
	}
	return nil
}
