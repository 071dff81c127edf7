//go:build linux

package tunnel

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// rsyncAdmitter admits to a checkin endpoint exactly the connection each
// rsync the backup engine starts makes, while that rsync runs: the peer
// socket must pass sameUser's checks, be held open by one of this
// process's direct children (the engine runs rsync itself, and rsync
// connects from its first process: one connect(2) per run), and a child
// gets one connection. Anything else of our own user (this process
// itself, whose API calls may meet an endpoint that took the API's port,
// a grandchild, an unrelated root process, a second connection from the
// same rsync) is refused.
type rsyncAdmitter struct {
	mu   sync.Mutex
	seen map[procID]bool // children that already got their connection
}

// procID names a process across pid reuse.
type procID struct {
	pid   int
	start string // starttime, field 22 of /proc/PID/stat
}

func newRsyncAdmitter() *rsyncAdmitter {
	return &rsyncAdmitter{seen: map[procID]bool{}}
}

func (a *rsyncAdmitter) admit(c net.Conn, ownProcess bool) error {
	uid, inode, err := peerSocket(c)
	if err != nil {
		return err
	}
	if uid != os.Getuid() {
		return fmt.Errorf("peer %v belongs to uid %d, not to us (uid %d): %w", c.RemoteAddr(), uid, os.Getuid(), errOtherUser)
	}
	self := os.Getpid()
	// The children first: the connection is normally an rsync's, and
	// this process holds many more descriptors to look through than
	// an rsync does. A socket is never held by both (ours are opened
	// close-on-exec), so the order decides nothing else.
	pid, err := socketHolder(inode, append(children(self), self))
	if errors.Is(err, errNotHeld) {
		// The kernel's children lists are not guaranteed complete while
		// processes come and go; look again the slow way before refusing.
		pid, err = socketHolder(inode, childrenByParent(self))
	}
	if err != nil {
		return fmt.Errorf("peer %v: %w", c.RemoteAddr(), err)
	}
	if pid == self {
		if ownProcess {
			return nil
		}
		return fmt.Errorf("peer %v: %w", c.RemoteAddr(), errOwnProcess)
	}
	id := procID{pid: pid, start: startTime(pid)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[id] {
		return fmt.Errorf("peer %v: process %d: %w", c.RemoteAddr(), pid, errSecondConn)
	}
	a.seen[id] = true
	return nil
}

// socketHolder returns the first of pids that has socket inode open.
func socketHolder(inode uint64, pids []int) (int, error) {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // it exited, or is not ours to read
		}
		for _, e := range entries {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				return pid, nil
			}
		}
	}
	return 0, errNotHeld
}

// children returns the pids of pid's direct children, from each thread's
// children list (Go starts processes from whichever thread runs the
// goroutine), or, where the kernel has no such file, childrenByParent.
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	// Read the thread directory and each thread's file directly: a Glob
	// would also lstat every match first.
	tasks, _ := os.ReadDir(dir)
	var out []int
	read := false
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue
		}
		read = true
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	if read {
		return out
	}
	return childrenByParent(pid)
}

// childrenByParent returns the pids of pid's direct children by reading
// every process's parent.
func childrenByParent(pid int) []int {
	var out []int
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		f := statFields(p)
		// Fields after "(comm)": state is 0, ppid is 1.
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if n, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// startTime returns the start time of pid (field 22 of /proc/PID/stat),
// or "" if it cannot be read.
func startTime(pid int) string {
	f := statFields("/proc/" + strconv.Itoa(pid) + "/stat")
	if len(f) > 19 {
		return f[19]
	}
	return ""
}

// statFields returns the fields of a /proc/PID/stat file after the
// command name.
func statFields(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parseStat(string(b))
}

// parseStat splits the text of a /proc/PID/stat file after the command
// name, "(comm)", which any process sets for itself (prctl PR_SET_NAME)
// and which may contain spaces and parentheses: it ends at the last ')'.
func parseStat(s string) []string {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}
