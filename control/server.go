package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

// Protocol limits: a request is one JSON line.
const (
	maxRequest     = 4 << 10
	requestTimeout = 10 * time.Second
)

// Request operations.
const (
	// OpStatus answers with the Status document.
	OpStatus = "status"
	// OpWaitRestore answers with the newest restore session of Machine
	// once there is one; it waits until the client hangs up.
	OpWaitRestore = "wait_restore"
	// OpRestoreLog has serve log a restore's start or end (RestoreLog)
	// with the peer's uid and pid, so serve's log says who restored what.
	OpRestoreLog = "restore_log"
)

// request is one line a client sends.
type request struct {
	Op      string      `json:"op"`
	Machine string      `json:"machine,omitempty"`
	Restore *RestoreLog `json:"restore,omitempty"`
}

// response is the one line the server answers; exactly one field is set.
type response struct {
	Status  *Status          `json:"status,omitempty"`
	Restore *monitor.Session `json:"restore,omitempty"`
	Error   string           `json:"error,omitempty"`
	// Logged acknowledges an OpRestoreLog.
	Logged bool `json:"logged,omitempty"`
}

// State is the live state the socket answers from; serve passes its
// *monitor.State, which the SSH server and the backup engine report into.
type State interface {
	// Status is a copy of the live state; it measures the volumes and
	// counts the spooled reports.
	Status() monitor.Status
	// RestoreSession returns machine's newest restore session, or nil,
	// and a channel closed at the next change of sessions.
	RestoreSession(machine string) (*monitor.Session, <-chan struct{})
}

// Options configure a Server. cmd builds them from the configuration.
type Options struct {
	State State
	// Storage is this storage unit's name, which every answer carries:
	// several units may run on one host.
	Storage string
	Version string
	// Started is when serve started.
	Started time.Time
	// MaxConcurrentBackups returns the bound of the backup slots in force
	// when asked (serve passes backup.Slots.Limit, which a reload
	// changes); nil reports 0.
	MaxConcurrentBackups func() int
	// Published returns the configuration's published in force (nil:
	// not set); nil reports it unset.
	Published func() *bool
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// Server answers the control socket.
type Server struct {
	opts Options
	log  *slog.Logger
}

// NewServer returns a Server for opts.
func NewServer(opts Options) (*Server, error) {
	if opts.State == nil {
		return nil, errors.New("control: no live state")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: log}, nil
}

// Listener is the control socket. Close removes the socket file, unless
// another process replaced it in the meantime.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
	// link is the symlink Link made, "" without one.
	link string
}

// Close stops listening and removes the socket file, and the link to it.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if ino, ierr := inode(l.path); ierr == nil && ino == l.ino {
		os.Remove(l.path)
	}
	if l.link != "" {
		if target, lerr := os.Readlink(l.link); lerr == nil && target == l.path {
			os.Remove(l.link)
		}
	}
	return err
}

// Link makes path a symlink to the socket, so that a client looking at
// path reaches it (connect(2) follows symlinks). A symlink already there
// is replaced (one to a socket that is gone is stale; one to a socket
// that answers is another serve's, and refused); anything else at path
// is an error naming it.
func (l *Listener) Link(path string) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSymlink {
			return fmt.Errorf("control socket link %s: exists and is not a symlink; not replacing it", path)
		}
		if target, _ := os.Readlink(path); target != l.path {
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				c.Close()
				return fmt.Errorf("control socket link %s: another turku-storage serve answers on it", path)
			}
		}
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(l.path, tmp); err != nil {
		return fmt.Errorf("control socket link: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("control socket link: %w", err)
	}
	l.link = path
	return nil
}

// Listen creates the socket at path, mode 0600, creating its directory
// (0700) when missing. A stale socket left by a process that died is
// replaced; a socket another process still answers on, or any file that
// is not a socket, is an error naming the path. The socket is created
// under a temporary name and renamed into place once its mode is set, so
// it is never reachable with a wider mode.
func Listen(path string) (*Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("control_socket %q: want an absolute path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control_socket %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control_socket %s: exists and is not a socket; not replacing it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control_socket %s: another turku-storage serve answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control_socket %s: remove stale socket: %w", path, err)
		}
	}
	// Short, so it fits a socket address wherever path does.
	tmp := filepath.Join(filepath.Dir(path), "."+strconv.Itoa(os.Getpid()))
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control_socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control_socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	ino, err := inode(path)
	if err != nil {
		return fail(err)
	}
	return &Listener{UnixListener: ln, path: path, ino: ino}, nil
}

// Serve answers connections on ln until ctx ends, then closes ln and
// every open connection and returns once their goroutines are done.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ln.Close()
			return fmt.Errorf("control socket: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(cctx, func() { c.Close() })
			defer stop()
			s.handle(cctx, c)
		}()
	}
}

// handle answers one request on c.
func (s *Server) handle(ctx context.Context, c net.Conn) {
	who, err := checkPeer(c)
	if err != nil {
		s.log.Warn("control socket: connection refused", "err", err)
		writeResponse(c, response{Error: "permission denied"})
		return
	}
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	line, err := bufio.NewReader(io.LimitReader(c, maxRequest)).ReadSlice('\n')
	if err != nil {
		writeResponse(c, response{Error: "want one JSON request line"})
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(c, response{Error: "bad request: " + err.Error()})
		return
	}
	c.SetReadDeadline(time.Time{})
	switch req.Op {
	case OpStatus:
		writeResponse(c, response{Status: s.Status()})
	case OpWaitRestore:
		if req.Machine == "" {
			writeResponse(c, response{Error: "wait_restore: no machine"})
			return
		}
		// The client hangs up when it stops waiting: its read ends.
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			io.Copy(io.Discard, c)
		}()
		defer func() { c.Close(); <-gone }()
		for {
			rs, changed := s.opts.State.RestoreSession(req.Machine)
			if rs != nil {
				writeResponse(c, response{Restore: rs})
				return
			}
			select {
			case <-changed:
			case <-gone:
				return
			case <-ctx.Done():
				writeResponse(c, response{Error: "serve is shutting down"})
				return
			}
		}
	case OpRestoreLog:
		if err := req.Restore.check(); err != nil {
			writeResponse(c, response{Error: "restore_log: " + err.Error()})
			return
		}
		s.logRestore(req.Restore, who)
		writeResponse(c, response{Logged: true})
	default:
		writeResponse(c, response{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// Status returns the current status document.
func (s *Server) Status() *Status {
	st := &Status{Storage: s.opts.Storage, Version: s.opts.Version, Started: s.opts.Started, Status: s.opts.State.Status()}
	if s.opts.MaxConcurrentBackups != nil {
		st.MaxConcurrentBackups = s.opts.MaxConcurrentBackups()
	}
	if s.opts.Published != nil {
		st.Published = s.opts.Published()
	}
	return st
}

func writeResponse(c net.Conn, r response) {
	c.SetWriteDeadline(time.Now().Add(requestTimeout))
	data, _ := json.Marshal(r)
	c.Write(append(data, '\n'))
}
