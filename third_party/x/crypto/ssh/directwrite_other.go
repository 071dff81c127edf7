// Copyright 2026 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !unix

package ssh

import (
	"errors"
	"io"
	"syscall"
)

// rawConn reports no raw connection: direct writes are for Unix only.
func rawConn(io.Writer) syscall.RawConn { return nil }

func writeNonblocking(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("ssh: direct writes are not supported on this platform")
}
