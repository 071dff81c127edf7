package sshserver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestConnReadAhead: once authenticated, reads go through the read-ahead
// buffer; whatever sizes the reader asks for, it gets the bytes in order,
// then the peer's EOF.
func TestConnReadAhead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sizes []int // read sizes, cycled
	}{
		{name: "bufio fills", sizes: []int{4096}},
		{name: "packet reads", sizes: []int{4, 32777}},
		{name: "larger than the buffer", sizes: []int{readBufferSize + 1}},
		{name: "odd sizes", sizes: []int{1, 7, 4096, 65536, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := make([]byte, 3*readBufferSize+12345)
			rand.Read(want)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.Write(want)
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			c := &conn{Conn: nc, idle: time.Minute}
			c.authed.Store(true)
			var got bytes.Buffer
			for i := 0; ; i++ {
				p := make([]byte, tt.sizes[i%len(tt.sizes)])
				n, err := c.Read(p)
				got.Write(p[:n])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("got %d bytes, want %d, or they differ", got.Len(), len(want))
			}
		})
	}
}

// TestConnAuthedIO: once authenticated, reads and writes go straight to
// the socket (rawio_linux.go); they must keep net.Conn's behaviour: every
// byte written arrives in order, the idle timeout's deadlines end waits
// with os.ErrDeadlineExceeded, and a reset peer is an error, not EOF.
func TestConnAuthedIO(t *testing.T) {
	t.Parallel()
	pair := func(t *testing.T) (*conn, net.Conn) {
		nc, peer, err := socketPair()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close(); peer.Close() })
		c := &conn{Conn: nc, idle: time.Minute}
		c.authed.Store(true)
		return c, peer
	}

	t.Run("write", func(t *testing.T) {
		c, peer := pair(t)
		want := make([]byte, 8<<20)
		rand.Read(want)
		done := make(chan error, 1)
		go func() {
			n, err := c.Write(want)
			if err == nil && n != len(want) {
				err = io.ErrShortWrite
			}
			c.Conn.(*net.TCPConn).CloseWrite()
			done <- err
		}()
		var got bytes.Buffer
		buf := make([]byte, 1000) // a slow reader: the writer waits
		for {
			n, err := peer.Read(buf)
			got.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("peer got %d bytes, want %d, or they differ", got.Len(), len(want))
		}
	})

	t.Run("idle timeout", func(t *testing.T) {
		c, _ := pair(t)
		c.idle = 100 * time.Millisecond // the deadline Read and Write set
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read past its deadline: %v, want os.ErrDeadlineExceeded", err)
		}
		// The peer reads nothing: the socket fills and the write waits
		// for its deadline.
		n, err := c.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n >= 64<<20 {
			t.Errorf("write past its deadline: %d bytes, %v; want fewer and os.ErrDeadlineExceeded", n, err)
		}
	})

	t.Run("reset", func(t *testing.T) {
		c, peer := pair(t)
		peer.(*net.TCPConn).SetLinger(0)
		peer.Close()
		_, err := c.Read(make([]byte, 10))
		if err == nil || err == io.EOF {
			t.Errorf("read from a reset connection: %v, want an error other than EOF", err)
		}
	})
}
