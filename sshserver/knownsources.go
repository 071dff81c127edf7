package sshserver

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// The known sources survive a restart: without them every agent is a
// stranger again after one, and a fleet connecting at once meets the
// strangers' rules (docs/operations.md, "Facing the internet"). The file
// is Options.KnownSourcesFile, one source a line with the Unix time of
// its last authentication:
//
//	# turku-storage known sources v1
//	203.0.113.7/32 1765000000
//	2001:db8:1:2::/64 1765000100
//
// It is written whole to a temporary file and renamed over the old one,
// every knownSaveEvery while sources authenticate and when Serve returns.
// A missing, unreadable or damaged file is logged and the server starts
// with what it could read; it is never fatal.

const (
	knownHeader = "# turku-storage known sources v1"
	// knownSaveEvery spaces the saves while agents authenticate.
	knownSaveEvery = 5 * time.Minute
	// maxKnownLine bounds one line: the longest IPv6 /64 and a time.
	maxKnownLine = 64
	// maxKnownFile bounds the file read: a file longer than this many
	// sources is not ours to trust, and is ignored.
	maxKnownFile = 1 << 20
)

// knownBound is the size of the known sources' table for a fleet of
// machines (see admission.go).
func knownBound(machines int) int {
	return max(minKnown, 2*machines)
}

// setFleet sizes the known sources' table for a fleet of machines. A
// smaller bound forgets nothing at once: the table shrinks as sources
// expire or make room for others.
func (a *admission) setFleet(machines int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.maxKnown = knownBound(machines)
}

// knownEntry is one line of the file.
type knownEntry struct {
	key      srcKey
	lastAuth int64 // UnixNano
}

// knownSnapshot returns the known sources authenticated within knownFor,
// newest first, and marks the table saved.
func (a *admission) knownSnapshot() []knownEntry {
	n := a.now().UnixNano()
	a.mu.Lock()
	out := make([]knownEntry, 0, len(a.known))
	for k, st := range a.known {
		if st.lastAuth != 0 && n-st.lastAuth < int64(knownFor) {
			out = append(out, knownEntry{k, st.lastAuth})
		}
	}
	a.knownSet = false
	a.mu.Unlock()
	slices.SortFunc(out, newestFirst)
	return out
}

func newestFirst(x, y knownEntry) int { return cmp.Compare(y.lastAuth, x.lastAuth) }

// changed reports whether a source authenticated since the last save.
func (a *admission) changed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.knownSet
}

// saveKnown writes the known sources to path, atomically.
func (a *admission) saveKnown(path string) error {
	entries := a.knownSnapshot()
	var b bytes.Buffer
	b.Grow(len(entries)*32 + len(knownHeader) + 1)
	b.WriteString(knownHeader + "\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %d\n", e.key, e.lastAuth/int64(time.Second))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o600)
}

// errKnownDamaged marks a file that is not a known-sources file, or one
// cut short.
var errKnownDamaged = errors.New("not a known-sources file")

// readKnown parses a known-sources file. On a damaged line it returns
// what it read before it, with an error naming the line.
func readKnown(r io.Reader) ([]knownEntry, error) {
	br := bufio.NewReaderSize(r, 4096)
	var out []knownEntry
	for line := 1; ; line++ {
		s, err := br.ReadString('\n')
		if err == io.EOF && s == "" {
			if line == 1 {
				return nil, fmt.Errorf("%w: empty", errKnownDamaged)
			}
			return out, nil
		}
		if err != nil && err != io.EOF {
			return out, err
		}
		if len(s) > maxKnownLine || !strings.HasSuffix(s, "\n") {
			return out, fmt.Errorf("line %d: %w: line too long or cut short", line, errKnownDamaged)
		}
		s = strings.TrimSuffix(s, "\n")
		if line == 1 {
			if s != knownHeader {
				return nil, fmt.Errorf("line 1: %w: header %q", errKnownDamaged, s)
			}
			continue
		}
		if len(out) >= maxKnownFile {
			return out, fmt.Errorf("%w: more than %d sources", errKnownDamaged, maxKnownFile)
		}
		e, ok := parseKnown(s)
		if !ok {
			return out, fmt.Errorf("line %d: %w: %q", line, errKnownDamaged, s)
		}
		out = append(out, e)
	}
}

// parseKnown parses "PREFIX UNIXSECONDS"; only the prefixes sourceOf
// makes (an IPv4 /32, an IPv6 /64) are accepted.
func parseKnown(s string) (knownEntry, bool) {
	ps, ts, ok := strings.Cut(s, " ")
	if !ok {
		return knownEntry{}, false
	}
	p, err := netip.ParsePrefix(ps)
	if err != nil || p != p.Masked() {
		return knownEntry{}, false
	}
	if want := 64; p.Addr().Is4() {
		want = 32
		if p.Bits() != want {
			return knownEntry{}, false
		}
	} else if p.Bits() != want || p.Addr().Is4In6() {
		return knownEntry{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 || sec > 1<<40 {
		return knownEntry{}, false
	}
	return knownEntry{keyOf(p), sec * int64(time.Second)}, true
}

// loadKnown adds the file's sources authenticated within knownFor to the
// known sources, with their ages: at most the table's bound, newest
// first. A source authenticated in the future (a clock set back) counts
// as authenticated now. It returns how many it added.
func (a *admission) loadKnown(entries []knownEntry) int {
	n := a.now().UnixNano()
	slices.SortFunc(entries, newestFirst)
	a.mu.Lock()
	defer a.mu.Unlock()
	added := 0
	for _, e := range entries {
		if len(a.known) >= a.maxKnown {
			break
		}
		if n-e.lastAuth >= int64(knownFor) {
			break // newest first: the rest are older still
		}
		if _, ok := a.known[e.key]; ok {
			continue
		}
		a.known[e.key] = sourceState{lastAuth: min(e.lastAuth, n)}
		added++
	}
	return added
}

// loadKnownFile loads Options.KnownSourcesFile, if set; problems are
// logged, never fatal.
func (s *Server) loadKnownFile() {
	path := s.opts.KnownSourcesFile
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		s.logger.Info("no known sources saved yet; every address is a stranger until it authenticates", "path", path)
		return
	}
	if err != nil {
		s.logger.Warn("known sources unreadable, starting without them", "path", path, "err", err)
		return
	}
	defer f.Close()
	entries, err := readKnown(f)
	added := s.adm.loadKnown(entries)
	if err != nil {
		s.logger.Warn("known sources file damaged; using the sources read before the damage", "path", path, "err", err, "sources", added)
		return
	}
	s.logger.Info("loaded known sources", "path", path, "sources", added, "read", len(entries))
}

// saveKnownFile saves the known sources to Options.KnownSourcesFile;
// a failure is logged.
func (s *Server) saveKnownFile() {
	path := s.opts.KnownSourcesFile
	if path == "" {
		return
	}
	if err := s.adm.saveKnown(path); err != nil {
		s.logger.Warn("could not save the known sources", "path", path, "err", err)
	}
}

// saveKnownLoop saves the known sources every knownSaveEvery while they
// change, until ctx ends.
func (s *Server) saveKnownLoop(ctx context.Context) {
	every(ctx, knownSaveEvery, func() bool {
		if s.adm.changed() {
			s.saveKnownFile()
		}
		return true
	})
}
