package sshserver

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Once the agent is authenticated, its socket is read and written with
// raw system calls on the non-blocking descriptor, waiting for it through
// the runtime's network poller as net.Conn does. A raw call skips the
// runtime's system call bookkeeping, and with it the wake-up of its
// monitor thread (sysmon) that every system call after an idle moment
// causes; sysmon then polls every 20 µs for a while (golang/go#18236).
// Between an agent's packets serve is often idle, so that cost came with
// nearly every packet of a transfer: 10–15% of serve's CPU per MiB
// (docs/benchmarks.md, "Raw system calls on the agent's socket").
// The calls cannot block: the descriptor is non-blocking.

// readAuthed is c.Conn.Read for an authenticated connection.
func (c *conn) readAuthed(p []byte) (int, error) {
	rc := c.rawConn()
	if rc == nil || len(p) == 0 {
		return c.Conn.Read(p)
	}
	var n int
	var errno syscall.Errno
	if err := rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			n, errno = int(r), e
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait in the poller, then again
			}
			return true
		}
	}); err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, c.opError("read", errno)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// writeAuthed is c.Conn.Write for an authenticated connection: it writes
// all of p unless an error (a deadline among them) stops it.
func (c *conn) writeAuthed(p []byte) (int, error) {
	rc := c.rawConn()
	if rc == nil || len(p) == 0 {
		return c.Conn.Write(p)
	}
	done := 0
	var errno syscall.Errno
	if err := rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				done += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait in the poller, then go on
			default:
				errno = e
				return true
			}
		}
		return true
	}); err != nil {
		return done, err
	}
	if errno != 0 {
		return done, c.opError("write", errno)
	}
	return done, nil
}

// rawConn returns the raw connection of c's socket, or nil if it has
// none (a connection that is not a socket, in tests).
func (c *conn) rawConn() syscall.RawConn {
	c.rawOnce.Do(func() {
		if sc, ok := c.Conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				c.raw = rc
			}
		}
	})
	return c.raw
}

// opError wraps errno as the net package would.
func (c *conn) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
