package control

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// checkPeer admits only root and our own user (SO_PEERCRED), whatever the
// socket's mode: the socket names machines, their addresses and restore
// ports. It returns who the peer is, for the log.
func checkPeer(c net.Conn) (peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return unknownPeer, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return unknownPeer, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return unknownPeer, err
	}
	if cerr != nil {
		return unknownPeer, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return unknownPeer, fmt.Errorf("peer uid %d (pid %d) is neither root nor uid %d", cred.Uid, cred.Pid, os.Getuid())
	}
	return peer{uid: int(cred.Uid), pid: int(cred.Pid)}, nil
}

func inode(path string) (uint64, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	return fi.Sys().(*syscall.Stat_t).Ino, nil
}
