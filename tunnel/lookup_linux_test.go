//go:build linux

package tunnel

import (
	"net"
	"testing"
)

// TestPeerSocketLookupsAgree: the sock_diag lookup and /proc/net/tcp, its
// fallback, name the same owner and inode for a connection's peer.
func TestPeerSocketLookupsAgree(t *testing.T) {
	server := loopbackConn(t)
	if !useDiag(server) {
		t.Skip("the kernel does not answer sock_diag for TCP here")
	}
	local, remote := server.LocalAddr().(*net.TCPAddr), server.RemoteAddr().(*net.TCPAddr)
	uid, inode, state, err := diagSocket(remote, local)
	if err != nil {
		t.Fatal(err)
	}
	puid, pinode, err := procPeerSocket(server, local, remote)
	if err != nil {
		t.Fatal(err)
	}
	if int(uid) != puid || uint64(inode) != pinode || inode == 0 {
		t.Errorf("sock_diag: uid %d inode %d; /proc/net/tcp: uid %d inode %d", uid, inode, puid, pinode)
	}
	if state != 1 { // TCP_ESTABLISHED
		t.Errorf("state %d, want 1 (established)", state)
	}
	// A 4-tuple no socket has: not found, not an error of the lookup.
	gone := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	if _, _, _, err := diagSocket(gone, local); err != diagNotFound {
		t.Errorf("lookup of no socket: %v, want diagNotFound", err)
	}
}
