// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build unix

package ssh

import (
	"io"
	"net"
	"syscall"
)

// rawConn returns the raw connection of w if w is a net.Conn that has one:
// the net package's connections are non-blocking, which direct writes
// (buffer.startDirect) need.
func rawConn(w io.Writer) syscall.RawConn {
	if _, ok := w.(net.Conn); !ok {
		return nil
	}
	sc, ok := w.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeNonblocking writes p to rc's socket once, without waiting for it to
// become writable: it returns what the socket took, possibly nothing.
func writeNonblocking(rc syscall.RawConn, p []byte) (int, error) {
	var n int
	var err error
	if rerr := rc.Write(func(fd uintptr) bool {
		for {
			n, err = rawWrite(fd, p)
			if err != syscall.EINTR {
				return true
			}
		}
	}); rerr != nil {
		return 0, rerr
	}
	if n < 0 {
		n = 0
	}
	if err == syscall.EAGAIN {
		err = nil
	}
	return n, err
}
