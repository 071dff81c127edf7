package coordinator

import (
	"net"
	"sync"
)

// Connection caps for Listener: HTTP admission (Handler) only sees
// requests, and a client that opens connections and sends nothing would
// otherwise hold a goroutine and a file descriptor each (shared with the
// SSH server) until the read-header timeout.
const (
	maxConns        = 256
	maxConnsPerAddr = 16
)

// Listener wraps the coordinator_listen listener so that at most a few
// connections per client address (IPv4 address or IPv6 /64) and a bounded
// number in all are open at once; a connection over either cap is closed
// as soon as it is accepted.
func (c *Coordinator) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, total: maxConns, perAddr: maxConnsPerAddr, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	total, perAddr int

	mu    sync.Mutex
	count int            // guarded by mu
	open  map[string]int // by addrKey; guarded by mu

	// closed, when set (tests), is called after a connection's place is
	// given back.
	closed func()
	// decided, when set (tests), is called once a new connection is
	// taken or refused.
	decided func(taken bool)
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(conn.RemoteAddr().String())
		l.mu.Lock()
		ok := l.count < l.total && l.open[key] < l.perAddr
		if ok {
			l.count++
			l.open[key]++
		}
		l.mu.Unlock()
		if l.decided != nil {
			l.decided(ok)
		}
		if !ok {
			conn.Close()
			continue
		}
		return &limitConn{Conn: conn, l: l, key: key}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	key  string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.count--
		if c.l.open[c.key]--; c.l.open[c.key] <= 0 {
			delete(c.l.open, c.key)
		}
		c.l.mu.Unlock()
		if c.l.closed != nil {
			c.l.closed()
		}
	})
	return err
}
