package sshserver

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
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
