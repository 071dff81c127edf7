// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package ssh

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// buffer provides a linked list buffer for data exchange
// between producer and consumer. Theoretically the buffer is
// of unlimited capacity as it does no allocation of its own.
type buffer struct {
	// protects concurrent access to head, tail and closed
	*sync.Cond

	head *element // the buffer that will be read first
	tail *element // the buffer that will be read last

	closed bool

	// While a channel's WriteTo runs with a writer that has a raw
	// connection (startDirect), sink is that connection, and writePacket
	// writes data to it at once, without blocking, in the producer's
	// goroutine (the transport's read loop), which then need not wake the
	// consumer. Data is written directly only while nothing is buffered
	// and no write is in progress (writing), so it never overtakes data
	// buffered before it; what the socket does not take at once is
	// buffered for writeTo.
	sink      syscall.RawConn
	writing   bool  // a write to sink or to writeTo's writer is in progress
	direct    int64 // bytes written directly since startDirect
	sinkErr   error // a direct write failed; writeTo returns it
	windowDue bool  // writeTo is to return so that the window is adjusted
}

// An element represents a single link in a linked list.
type element struct {
	buf  []byte
	next *element
	// packet, if set, is the pooled packet buf points into; it is
	// released once buf has been consumed.
	packet []byte
}

// newBuffer returns an empty buffer that is not closed.
func newBuffer() *buffer {
	e := new(element)
	b := &buffer{
		Cond: newCond(),
		head: e,
		tail: e,
	}
	return b
}

// write makes buf available for Read to receive.
// buf must not be modified after the call to write.
func (b *buffer) write(buf []byte) {
	b.writePacket(buf, nil)
}

// writePacket is write for buf inside packet, a buffer from newPacket that
// is released once buf has been consumed. It returns how many bytes of
// buf it wrote to the sink directly, which are consumed already.
func (b *buffer) writePacket(buf, packet []byte) int {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()
	written := 0
	if b.sink != nil && !b.writing && b.sinkErr == nil && b.head == b.tail && len(b.head.buf) == 0 {
		b.writing = true
		b.Cond.L.Unlock()
		n, err := writeNonblocking(b.sink, buf)
		b.Cond.L.Lock()
		b.writing = false
		b.direct += int64(n)
		written = n
		buf = buf[n:]
		if err != nil {
			// As in writeTo, what the writer did not take is dropped
			// along with its error; later data stays buffered.
			b.sinkErr = err
			buf = buf[:0]
		}
		if len(buf) == 0 {
			if packet != nil {
				releasePacket(packet)
			}
			// Wake writeTo only if it has something to do:
			// stopDirect waits for this write to end.
			if err != nil || b.sink == nil || b.closed {
				b.Cond.Signal()
			}
			return written
		}
	}
	e := &element{buf: buf, packet: packet}
	b.tail.next = e
	b.tail = e
	b.Cond.Signal()
	return written
}

// eof closes the buffer. Reads from the buffer once all
// the data has been consumed will receive io.EOF.
func (b *buffer) eof() {
	b.Cond.L.Lock()
	b.closed = true
	b.Cond.Signal()
	b.Cond.L.Unlock()
}

// Read reads data from the internal buffer in buf.  Reads will block
// if no data is available, or until the buffer is closed.
func (b *buffer) Read(buf []byte) (n int, err error) {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()

	for len(buf) > 0 {
		// if there is data in b.head, copy it
		if len(b.head.buf) > 0 {
			r := copy(buf, b.head.buf)
			buf, b.head.buf = buf[r:], b.head.buf[r:]
			n += r
			continue
		}
		// if there is a next buffer, make it the head
		if len(b.head.buf) == 0 && b.head != b.tail {
			b.head.release()
			b.head = b.head.next
			continue
		}

		// if at least one byte has been copied, return
		if n > 0 {
			break
		}

		// if nothing was read, and there is nothing outstanding
		// check to see if the buffer is closed.
		if b.closed {
			err = io.EOF
			break
		}
		// out of buffers, wait for producer
		b.Cond.Wait()
	}
	return
}

// release returns e's packet, whose data has been consumed, to the pool.
func (e *element) release() {
	if e.packet != nil {
		releasePacket(e.packet)
		e.packet = nil
	}
}

// writeTo waits for data, then writes all that is buffered to w with one
// net.Buffers write, without copying it, and releases it. It returns
// io.EOF once the buffer is closed and drained. Data that w did not take is
// dropped along with w's error.
//
// Between startDirect and stopDirect it also returns a direct write's
// error, and returns nothing written and no error when wakeForWindow asks
// for the window to be adjusted.
func (b *buffer) writeTo(w io.Writer) (int64, error) {
	b.Cond.L.Lock()
	for {
		// After a failed direct write, what was buffered since must not
		// be written: the writer would receive it with a gap before.
		if b.sinkErr != nil {
			b.Cond.L.Unlock()
			return 0, b.sinkErr
		}
		if b.head != b.tail || len(b.head.buf) > 0 {
			break
		}
		switch {
		case b.windowDue:
			b.windowDue = false
			b.Cond.L.Unlock()
			return 0, nil
		case b.closed && !b.writing:
			b.Cond.L.Unlock()
			return 0, io.EOF
		}
		b.Cond.Wait()
	}
	// Detach the list: write appends after the new tail only, so the
	// detached elements are ours alone.
	first := b.head
	e := new(element)
	b.head, b.tail = e, e
	b.writing = true
	b.Cond.L.Unlock()

	var bufs net.Buffers
	for e := first; e != nil; e = e.next {
		if len(e.buf) > 0 {
			bufs = append(bufs, e.buf)
		}
	}
	n, err := bufs.WriteTo(w)
	for e := first; e != nil; e = e.next {
		e.release()
	}
	b.Cond.L.Lock()
	b.writing = false
	b.Cond.L.Unlock()
	return n, err
}

// wakeForWindow has writeTo return, so that its caller adjusts the window
// for data written directly when the producer could not.
func (b *buffer) wakeForWindow() {
	b.Cond.L.Lock()
	b.windowDue = true
	b.Cond.Signal()
	b.Cond.L.Unlock()
}

// startDirect has writePacket write to rc directly until stopDirect.
func (b *buffer) startDirect(rc syscall.RawConn) {
	b.Cond.L.Lock()
	b.sink = rc
	b.direct, b.sinkErr, b.windowDue = 0, nil, false
	b.Cond.L.Unlock()
}

// stopDirect ends direct writes, waiting for one in progress, and returns
// how many bytes were written directly.
func (b *buffer) stopDirect() int64 {
	b.Cond.L.Lock()
	defer b.Cond.L.Unlock()
	b.sink = nil
	for b.writing {
		b.Cond.Wait()
	}
	return b.direct
}
