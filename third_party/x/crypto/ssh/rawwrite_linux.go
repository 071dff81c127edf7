// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"syscall"
	"unsafe"
)

// rawWrite is write(2) on a non-blocking socket without the runtime's
// system call bookkeeping: the call cannot block, and entering a system
// call after the process was idle wakes the runtime's monitor thread
// (sysmon), which then polls every 20µs for a while. Between the peer's
// packets the read loop is often idle, so with syscall.Write that cost
// was paid for nearly every packet (golang/go#18236).
func rawWrite(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
