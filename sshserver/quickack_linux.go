package sshserver

import (
	"net"

	"golang.org/x/sys/unix"
)

// quickAck asks Linux to acknowledge the next segments at once instead of
// delaying the ACK (TCP_QUICKACK, tcp(7)); the flag does not stick, so it
// is set again before every handshake read.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
