package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// DirName is the history's directory under VAR_DIR.
const DirName = "history"

const (
	// maxSummary bounds the summary kept in a record: rsync's last lines
	// and the error fit; a runaway summary does not grow the file.
	maxSummary = 4096
	// compactAbove is the size of a machine's file above which the next
	// append rewrites it, keeping about keepBytes of the newest records
	// (and always each source's newest).
	compactAbove = 512 << 10
	keepBytes    = 256 << 10
	// fileMode: summaries may name paths of the machine being backed up.
	fileMode = 0o640
)

// Attempt is one source backup's outcome, one line of a machine's file.
// Failures, FailingSince and LastSuccess carry the source's state as of
// this attempt, so the newest record of a source tells everything even
// after older records were compacted away.
type Attempt struct {
	Source   string    `json:"source"`
	Unit     string    `json:"unit,omitempty"`
	Begin    time.Time `json:"begin"`
	End      time.Time `json:"end"`
	Success  bool      `json:"success"`
	Snapshot string    `json:"snapshot,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	// Transfer figures from rsync's --stats; zero when unknown.
	BytesReceived   int64 `json:"bytes_received,omitempty"`
	TotalSize       int64 `json:"total_size,omitempty"`
	TransferredSize int64 `json:"transferred_size,omitempty"`
	Files           int64 `json:"files,omitempty"`
	NewFiles        int64 `json:"new_files,omitempty"`
	// Failures counts the failures in a row up to and including this
	// attempt (0 for a success).
	Failures int `json:"consecutive_failures"`
	// FailingSince is when the first of those failures began; zero for
	// a success.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// LastSuccess is when the source's last successful backup ended, this
	// one included; zero if it never succeeded.
	LastSuccess time.Time `json:"last_success,omitzero"`
}

// Duration is how long the attempt ran.
func (a Attempt) Duration() time.Duration { return a.End.Sub(a.Begin) }

// FirstLine is the summary's first line: the error of a failure.
func (a Attempt) FirstLine() string {
	s, _, _ := strings.Cut(strings.TrimSpace(a.Summary), "\n")
	return s
}

// Store is the history under one directory. It is safe for concurrent
// use; one process appends (serve), others only read.
type Store struct {
	dir string
	now func() time.Time

	mu   sync.Mutex
	last map[string]map[string]Attempt // machine → source → newest record; loaded per machine
}

// New returns the store in dir (VAR_DIR/history). It creates nothing until
// the first append.
func New(dir string) *Store {
	return &Store{dir: dir, now: time.Now, last: map[string]map[string]Attempt{}}
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(machine string) (string, error) {
	if machine == "" || machine == "." || machine == ".." || strings.ContainsAny(machine, "/\\\x00") {
		return "", fmt.Errorf("history: invalid machine name %q", machine)
	}
	return filepath.Join(s.dir, machine+".jsonl"), nil
}

// Append records a source's attempt for machine, filling Failures,
// FailingSince and LastSuccess from the source's previous record, and
// returns the record as written.
func (s *Store) Append(machine string, a Attempt) (Attempt, error) {
	path, err := s.path(machine)
	if err != nil {
		return a, err
	}
	if len(a.Summary) > maxSummary {
		a.Summary = a.Summary[:maxSummary] + "\n[…]\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, err := s.machineLast(machine, path)
	if err != nil {
		return a, err
	}
	prev, seen := last[a.Source]
	if a.Success {
		a.Failures, a.FailingSince, a.LastSuccess = 0, time.Time{}, a.End
	} else {
		a.LastSuccess = prev.LastSuccess
		if seen && !prev.Success {
			a.Failures, a.FailingSince = prev.Failures+1, prev.FailingSince
		} else {
			a.Failures, a.FailingSince = 1, a.Begin
		}
	}
	line, err := json.Marshal(a)
	if err != nil {
		return a, fmt.Errorf("history: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return a, fmt.Errorf("history: %w", err)
	}
	size, err := appendLine(path, line)
	if err != nil {
		return a, fmt.Errorf("history: machine %s: %w", machine, err)
	}
	last[a.Source] = a
	if size > compactAbove {
		if err := compact(path); err != nil {
			return a, fmt.Errorf("history: machine %s: compact: %w", machine, err)
		}
	}
	writeLatest(path, last)
	return a, nil
}

// machineLast returns (loading it on first use) the newest record of each
// of machine's sources. s.mu is held.
func (s *Store) machineLast(machine, path string) (map[string]Attempt, error) {
	if m, ok := s.last[machine]; ok {
		return m, nil
	}
	recs, err := readFile(path)
	if err != nil {
		return nil, err
	}
	m := newest(recs)
	s.last[machine] = m
	return m, nil
}

// appendLine appends line and a newline with one write, after a newline
// of its own if a crash left the file's last line unfinished, and syncs.
// It returns the file's new size.
func appendLine(path string, line []byte) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, fileMode)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 0, len(line)+2)
	if st.Size() > 0 {
		var b [1]byte
		if _, err := f.ReadAt(b[:], st.Size()-1); err == nil && b[0] != '\n' {
			buf = append(buf, '\n')
		}
	}
	buf = append(append(buf, line...), '\n')
	if _, err := f.Write(buf); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return st.Size() + int64(len(buf)), f.Close()
}

// compact rewrites path with its newest records up to keepBytes, and each
// source's newest record whatever its age.
func compact(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	keep := make([]bool, len(lines))
	seen := map[string]bool{}
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		var a Attempt
		if json.Unmarshal(lines[i], &a) != nil {
			continue
		}
		if total+len(lines[i]) < keepBytes || !seen[a.Source] {
			keep[i] = true
			total += len(lines[i]) + 1
		}
		seen[a.Source] = true
	}
	var out bytes.Buffer
	for i, l := range lines {
		if keep[i] {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	return atomicfile.WriteFile(path, out.Bytes(), fileMode)
}

// readFile returns a machine file's records, oldest first. Lines that do
// not parse (a write cut short by a crash) are skipped; a missing file has
// none.
func readFile(path string) ([]Attempt, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	defer f.Close()
	var out []Attempt
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var a Attempt
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Source != "" {
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("history: %s: %w", path, err)
	}
	return out, nil
}

func newest(recs []Attempt) map[string]Attempt {
	m := map[string]Attempt{}
	for _, a := range recs {
		if cur, ok := m[a.Source]; !ok || !a.End.Before(cur.End) {
			m[a.Source] = a
		}
	}
	return m
}

// Read returns machine's records, oldest first.
func (s *Store) Read(machine string) ([]Attempt, error) {
	path, err := s.path(machine)
	if err != nil {
		return nil, err
	}
	return readFile(path)
}

// Machines lists the machines that have a history, sorted.
func (s *Store) Machines() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".jsonl"); ok && e.Type().IsRegular() && name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Latest returns, for every machine with a history, the newest record of
// each source: from the small file Append keeps next to each machine's
// (latestSuffix) while it is current, else from the machine's file.
func (s *Store) Latest() (map[string]map[string]Attempt, error) {
	machines, err := s.Machines()
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]Attempt, len(machines))
	var errs []error
	for _, m := range machines {
		path, err := s.path(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		last, err := readLatest(path)
		if err != nil {
			errs = append(errs, err)
		}
		if len(last) > 0 {
			out[m] = last
		}
	}
	return out, errors.Join(errs...)
}
