// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build unix && !linux

package ssh

import "syscall"

// rawWrite is write(2); see rawwrite_linux.go.
func rawWrite(fd uintptr, p []byte) (int, error) {
	return syscall.Write(int(fd), p)
}
