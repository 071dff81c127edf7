package coordinator

import (
	"net"
	"sync"
)

// Connection caps for Listener: HTTP admission (Handler) only sees
// requests, and a client that opens connections and sends nothing, or
// half a header, would otherwise hold a goroutine and a file descriptor
// each (shared with the SSH server) until the header deadline.
const (
	maxConns        = 256
	maxConnsPerAddr = 16
)

// Listener wraps the coordinator_listen listener so that at most a few
// connections per client address (IPv4 address or IPv6 /64) and a bounded
// number in all are open at once, a quarter of them kept for addresses
// that proved a secret within knownFor; a connection over a cap is closed
// as soon as it is accepted.
func (c *Coordinator) Listener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, total: maxConns, strangerTotal: strangerShare(maxConns),
		perAddr: maxConnsPerAddr, adm: c.admission, open: map[string]int{}}
}

type limitListener struct {
	net.Listener
	total, strangerTotal, perAddr int
	adm                           *admission // known addresses; the refusal summary

	mu        sync.Mutex
	count     int            // guarded by mu
	strangers int            // of count, taken when the address was not known; guarded by mu
	open      map[string]int // by addrKey; guarded by mu

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
		stranger := !l.adm.isKnown(key)
		l.mu.Lock()
		var refused string
		switch {
		case l.open[key] >= l.perAddr:
			refused = refusedConnsPerAddr
		case l.count >= l.total:
			refused = refusedConnsFull
		case stranger && l.strangers >= l.strangerTotal:
			refused = refusedConnsStrangers
		default:
			l.count++
			l.open[key]++
			if stranger {
				l.strangers++
			}
		}
		l.mu.Unlock()
		if refused != "" {
			conn.Close()
			l.adm.noteRefused(refused)
		}
		if l.decided != nil {
			l.decided(refused == "")
		}
		if refused != "" {
			continue
		}
		return &limitConn{Conn: conn, l: l, key: key, stranger: stranger}, nil
	}
}

type limitConn struct {
	net.Conn
	l        *limitListener
	key      string
	stranger bool
	once     sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.count--
		if c.stranger {
			c.l.strangers--
		}
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
