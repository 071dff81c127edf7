package web

import (
	"cmp"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/history"
)

// maxAttempts is how many recent attempts a machine page lists.
const maxAttempts = 100

// MachinePage is the document behind /machine/UUID and /api/machine/UUID.
type MachinePage struct {
	Name    string         `json:"name"`
	Now     time.Time      `json:"now"`
	Machine MachineRow     `json:"machine"`
	Sources []SourceDetail `json:"sources"`
	// Attempts are the newest first, from the attempt history.
	Attempts     []history.Attempt `json:"attempts"`
	HistoryError string            `json:"history_error,omitempty"`
	DiskError    string            `json:"disk_error,omitempty"`
}

// SourceDetail is one source on a machine page.
type SourceDetail struct {
	SourceRow
	// Snapshots on disk, newest first.
	List []SnapshotRow `json:"snapshot_list"`
	// Restore is the command line that restores the latest snapshot
	// (turku-storage restore), empty without one.
	Restore      string        `json:"restore_command,omitempty"`
	DurationPlot template.HTML `json:"-"`
	BytesPlot    template.HTML `json:"-"`
}

// SnapshotRow is one snapshot with the figures of the rsync run that
// made it (nil where its .json has none).
type SnapshotRow struct {
	Name     string        `json:"name"`
	Dir      string        `json:"dir"`
	Begin    time.Time     `json:"sync_begin,omitzero"`
	Finished time.Time     `json:"sync_finish"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Base     string        `json:"base,omitempty"`
	Latest   bool          `json:"latest,omitempty"`
	// BytesReceived came over the wire; TransferredSize is the data
	// the snapshot added; TotalSize the source's size.
	BytesReceived   *int64 `json:"bytes_received,omitempty"`
	TransferredSize *int64 `json:"transferred_size,omitempty"`
	TotalSize       *int64 `json:"total_size,omitempty"`
}

// machine builds uuid's page; ok is false when this unit knows nothing of
// it.
func (s *Server) machine(uuid string) (MachinePage, bool) {
	now := s.opts.Now()
	st := s.opts.State.Status()
	disk, _ := s.disk.snapshot()
	var row MachineRow
	found := false
	if rows := s.machineRows(now, disk, backups(st), uuid); len(rows) == 1 {
		row, found = rows[0], true
	}
	p := MachinePage{Name: s.opts.Name, Now: now, Attempts: []history.Attempt{}, Sources: []SourceDetail{}}
	attempts, err := s.opts.History.Read(uuid)
	if err != nil {
		p.HistoryError = err.Error()
	}
	dir := filepath.Join(backup.MachinesDir(s.opts.VarDir), uuid)
	names, err := backup.ListSources(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.DiskError = err.Error()
	}
	if !found && len(attempts) == 0 && len(names) == 0 {
		if _, err := os.Lstat(dir); err != nil {
			return p, false
		}
	}
	if !found {
		row = MachineRow{UUID: uuid, State: StateOrphan}
	}
	p.Machine = row
	bySource := map[string]SourceRow{}
	for _, sr := range row.Sources {
		bySource[sr.Name] = sr
	}
	for _, n := range names {
		if _, ok := bySource[n]; !ok {
			bySource[n] = SourceRow{Name: n, State: StateOK, Bytes: -1}
		}
	}
	for _, a := range attempts {
		if _, ok := bySource[a.Source]; !ok {
			bySource[a.Source] = SourceRow{Name: a.Source, State: StateNever, Bytes: -1}
		}
	}
	for _, name := range sortedKeys(bySource) {
		d := SourceDetail{SourceRow: bySource[name], List: []SnapshotRow{}}
		snaps, err := backup.ListSnapshots(dir, name, s.opts.Location)
		if err != nil {
			p.DiskError = err.Error()
		}
		d.Snapshots = len(snaps)
		var durations, bytes []point
		for _, sn := range snaps {
			r := SnapshotRow{Name: sn.Name, Dir: filepath.Base(sn.Path), Begin: sn.SyncBegin, Finished: sn.SyncFinish,
				Duration: sn.Duration(), Base: sn.Base, Latest: sn.Latest}
			if sn.Stats != nil {
				r.BytesReceived, r.TransferredSize, r.TotalSize = &sn.Stats.BytesReceived, &sn.Stats.TransferredSize, &sn.Stats.TotalSize
				bytes = append(bytes, point{sn.SyncFinish, float64(sn.Stats.BytesReceived)})
			}
			if !sn.SyncBegin.IsZero() {
				durations = append(durations, point{sn.SyncFinish, sn.Duration().Seconds()})
			}
			d.List = append(d.List, r)
		}
		slices.Reverse(d.List)
		if len(snaps) > 0 {
			latest := snaps[len(snaps)-1]
			for _, sn := range snaps {
				if sn.Latest {
					latest = sn
				}
			}
			d.Restore = strings.Join([]string{s.restore, "restore", shellQuote(uuid), shellQuote(name),
				shellQuote(filepath.Base(latest.Path))}, " ")
		}
		loc := s.opts.Location
		d.DurationPlot = plotSVG("Duration of each backup of "+name, durations, formatSeconds, loc)
		d.BytesPlot = plotSVG("Bytes received for each backup of "+name, bytes, formatBytesF, loc)
		p.Sources = append(p.Sources, d)
	}
	slices.SortFunc(attempts, func(a, b history.Attempt) int { return cmp.Or(b.End.Compare(a.End), cmp.Compare(a.Source, b.Source)) })
	p.Attempts = append(p.Attempts, attempts[:min(len(attempts), maxAttempts)]...)
	return p, true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// machineUUID returns the request's machine, or "" when it is not a UUID
// (anything else in /machine/ is not found before anything is read).
func machineUUID(r *http.Request) string {
	uuid := r.PathValue("uuid")
	if !backup.IsUUID(uuid) {
		return ""
	}
	return uuid
}

func (s *Server) machinePage(w http.ResponseWriter, r *http.Request) {
	uuid := machineUUID(r)
	if uuid == "" {
		s.notFound(w, r)
		return
	}
	p, ok := s.machine(uuid)
	if !ok {
		s.notFound(w, r)
		return
	}
	s.render(w, r, "machine.html", http.StatusOK, p)
}

func (s *Server) machineJSON(w http.ResponseWriter, r *http.Request) {
	uuid := machineUUID(r)
	if uuid == "" {
		http.Error(w, "no such machine", http.StatusNotFound)
		return
	}
	p, ok := s.machine(uuid)
	if !ok {
		http.Error(w, "no such machine", http.StatusNotFound)
		return
	}
	writeJSON(w, r, p)
}
