//go:build linux

package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The NETLINK_SOCK_DIAG exact lookup of one TCP socket (linux
// include/uapi/linux/inet_diag.h, sock_diag(7)): a request without
// NLM_F_DUMP names the socket by its 4-tuple, and the kernel answers with
// that one socket's inet_diag_msg, found in its hash tables, whatever
// the number of other sockets. /proc/net/tcp, by contrast, is a text
// dump of every socket on the host, read whole for each connection.

// inetDiagReqV2 is struct inet_diag_req_v2; inetDiagSockID its id.
type inetDiagSockID struct {
	SPort  [2]byte // big endian
	DPort  [2]byte // big endian
	Src    [16]byte
	Dst    [16]byte
	If     uint32
	Cookie [2]uint32
}

type inetDiagReqV2 struct {
	Family   uint8
	Protocol uint8
	Ext      uint8
	Pad      uint8
	States   uint32
	ID       inetDiagSockID
}

const (
	sizeofNlMsghdr     = 16
	sizeofInetDiagReq  = 56
	sizeofInetDiagMsg  = 72
	offsetInetDiagUID  = 64 // idiag_uid in struct inet_diag_msg
	offsetInetDiagIno  = 68 // idiag_inode
	offsetInetDiagStat = 1  // idiag_state
	inetDiagNoCookie   = ^uint32(0)
)

// errDiagUnavailable: the kernel does not answer sock_diag requests for
// TCP (no tcp_diag, or netlink sockets not allowed).
var errDiagUnavailable = errors.New("sock_diag unavailable")

// diagNotFound: no socket has the 4-tuple asked for.
var diagNotFound = errors.New("no such socket")

// diagMode is 0 until the first lookup decides, 1 when sock_diag works,
// 2 when /proc/net/tcp must be read instead.
var diagMode atomic.Int32

// diagSocket returns the owner, inode and TCP state of the socket whose
// local address is src and remote address dst, both IPv4.
func diagSocket(src, dst *net.TCPAddr) (uid uint32, inode uint32, state uint8, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", errDiagUnavailable, err)
	}
	defer unix.Close(fd)
	// The kernel answers at once; a bound wait keeps a wedged netlink
	// from holding a check forever.
	tv := unix.Timeval{Sec: 2}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	req := inetDiagReqV2{Family: unix.AF_INET, Protocol: unix.IPPROTO_TCP, States: ^uint32(0)}
	binary.BigEndian.PutUint16(req.ID.SPort[:], uint16(src.Port))
	binary.BigEndian.PutUint16(req.ID.DPort[:], uint16(dst.Port))
	copy(req.ID.Src[:4], src.IP.To4())
	copy(req.ID.Dst[:4], dst.IP.To4())
	req.ID.Cookie = [2]uint32{inetDiagNoCookie, inetDiagNoCookie}

	buf := make([]byte, sizeofNlMsghdr, sizeofNlMsghdr+sizeofInetDiagReq)
	binary.NativeEndian.PutUint32(buf[0:], sizeofNlMsghdr+sizeofInetDiagReq)
	binary.NativeEndian.PutUint16(buf[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(buf[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(buf[8:], 1) // sequence number
	buf, err = binary.Append(buf, binary.NativeEndian, &req)
	if err != nil {
		return 0, 0, 0, err
	}
	// The ports and addresses are big endian whatever the host: they were
	// written as bytes above, which binary.Append copies as they are.
	if err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, 0, fmt.Errorf("%w: send: %w", errDiagUnavailable, err)
	}
	resp := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, resp, 0)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sock_diag: receive: %w", err)
	}
	resp = resp[:n]
	if len(resp) < sizeofNlMsghdr {
		return 0, 0, 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(resp))
	}
	switch typ := binary.NativeEndian.Uint16(resp[4:]); typ {
	case unix.NLMSG_ERROR:
		if len(resp) < sizeofNlMsghdr+4 {
			return 0, 0, 0, errors.New("sock_diag: short error")
		}
		errno := unix.Errno(-int32(binary.NativeEndian.Uint32(resp[sizeofNlMsghdr:])))
		if errno == unix.ENOENT {
			return 0, 0, 0, diagNotFound
		}
		return 0, 0, 0, fmt.Errorf("sock_diag: %w", errno)
	case unix.SOCK_DIAG_BY_FAMILY:
		msg := resp[sizeofNlMsghdr:]
		if len(msg) < sizeofInetDiagMsg {
			return 0, 0, 0, fmt.Errorf("sock_diag: short inet_diag_msg (%d bytes)", len(msg))
		}
		return binary.NativeEndian.Uint32(msg[offsetInetDiagUID:]), binary.NativeEndian.Uint32(msg[offsetInetDiagIno:]), msg[offsetInetDiagStat], nil
	default:
		return 0, 0, 0, fmt.Errorf("sock_diag: unexpected message type %d", typ)
	}
}

// useDiag reports whether sock_diag answers for TCP here, deciding once by
// looking up c's own socket, which certainly exists. A kernel without
// tcp_diag answers ENOENT for every socket, which would otherwise read as
// "the peer's socket is gone".
func useDiag(c net.Conn) bool {
	switch diagMode.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false
	}
	_, _, _, err := diagSocket(local, remote)
	if err == nil {
		diagMode.Store(1)
		return true
	}
	diagMode.Store(2)
	return false
}
