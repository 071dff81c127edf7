package agenttest

import (
	"net"
	"sync/atomic"
)

// CountingConn counts what a client read, to tell a refusal before the
// server's banner (nothing read) from a failure after it.
type CountingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *CountingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// BytesRead is how many bytes were read through c so far.
func (c *CountingConn) BytesRead() int64 { return c.n.Load() }
