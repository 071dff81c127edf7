package history

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/turku-backup/turku-storage/internal/words"
)

// What `logs` reads and prints.

// Query selects attempts for `logs`.
type Query struct {
	// Machine is a machine UUID (FindMachine), "" for every machine;
	// Source narrows it to one source.
	Machine, Source string
	// Failed keeps only the failed attempts; Limit is how many at most
	// (0: all).
	Failed bool
	Limit  int
}

// Query returns the attempts q selects, newest first.
func (s *Store) Query(q Query) ([]Entry, error) {
	var machines []string
	if q.Machine != "" {
		machines = []string{q.Machine}
	}
	entries, err := s.Entries(machines, q.Source)
	if err != nil {
		return nil, err
	}
	if q.Failed {
		entries = slices.DeleteFunc(entries, func(e Entry) bool { return e.Success })
	}
	if q.Limit > 0 {
		entries = entries[:min(q.Limit, len(entries))]
	}
	return entries, nil
}

// FindMachine resolves a machine name for `logs`: a UUID with a history,
// else what resolve (the machine links and the key cache) makes of it,
// else a unit name recorded in the history.
func (s *Store) FindMachine(name string, resolve func(name string) (string, error)) (string, error) {
	machines, err := s.Machines()
	if err != nil {
		return "", err
	}
	if slices.Contains(machines, name) {
		return name, nil
	}
	if uuid, err := resolve(name); err == nil {
		return uuid, nil
	}
	found, err := s.WithUnit(name)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("machine %q: no backup history on this storage unit (not a UUID, name or unit name it knows)", name)
	}
	return "", fmt.Errorf("machine %q: the unit name of several machines (%s): give the UUID", name, strings.Join(found, ", "))
}

// WriteEntries writes entries as `logs` prints them: a table under a
// header row, times in loc, a failure's summary indented under its row.
// Nothing at all when there are none.
func WriteEntries(w io.Writer, entries []Entry, loc *time.Location) error {
	if len(entries) == 0 {
		return nil
	}
	// The rows are aligned on their own, then the summaries put between
	// them: a line without cells would restart tabwriter's columns.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINISHED\tUNIT\tSOURCE\tRESULT\tSNAPSHOT\tDURATION\tTRANSFERRED")
	for _, e := range entries {
		status := "ok"
		if !e.Success {
			status = fmt.Sprintf("failed(%d)", e.Failures)
		}
		size := "-"
		// Sizes come from rsync's --stats: none for a failure, nor for
		// attempts recorded before they were kept.
		if e.Success && (e.TotalSize > 0 || e.BytesReceived > 0) {
			size = fmt.Sprintf("%s of %s, %s", humanize.IBytes(uint64(e.TransferredSize)), humanize.IBytes(uint64(e.TotalSize)), words.Count(int(e.Files), "file", ""))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.End.In(loc).Format(time.RFC3339), words.Dash(e.Unit), e.Source, status,
			words.Dash(e.Snapshot), e.Duration().Round(time.Second), size)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	rows := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	fmt.Fprintln(w, rows[0])
	for i, e := range entries {
		fmt.Fprintln(w, rows[i+1])
		if !e.Success {
			for _, line := range strings.Split(strings.TrimRight(e.Summary, "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(w, "    %s\n", line)
				}
			}
		}
	}
	return nil
}
