package tunnel

import (
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// countInterval is how often a running transfer's received bytes are
// read off the local socket for live status.
const countInterval = time.Second

// countReceived arranges for count to hear of the bytes copied to c as they
// flow, and returns the writer to copy into and the function to call with
// the copy's total once it ends; count has then heard of exactly total.
//
// For a TCP connection the count is read from the kernel (TCP_INFO's
// bytes_acked: what the local side has received) every countInterval, so
// that the copy writes to the socket itself: the channel's WriteTo then
// writes each packet from x/crypto's read loop without a goroutine handoff
// (docs/x-crypto-patch.md), which a counting wrapper would prevent.
func countReceived(c net.Conn, count func(int64)) (io.Writer, func(total int64)) {
	tc, ok := c.(*net.TCPConn)
	var rc syscall.RawConn
	if ok {
		rc, _ = tc.SyscallConn()
	}
	if rc == nil {
		return countingWriter{c, count}, func(int64) {}
	}
	// reported is the sampler's until done is closed, then the caller's.
	var reported int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(countInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			var acked uint64
			var serr error
			if err := rc.Control(func(fd uintptr) {
				var info *unix.TCPInfo
				if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
					acked = info.Bytes_acked
				}
			}); err != nil || serr != nil {
				return // closed: the total comes at the end
			}
			if d := int64(acked) - reported; d > 0 {
				reported += d
				count(d)
			}
		}
	}()
	return c, func(total int64) {
		close(stop)
		<-done
		if d := total - reported; d != 0 {
			count(d)
		}
	}
}
