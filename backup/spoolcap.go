package backup

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The report spool's cap. While the API is down every finished source adds
// a report to VAR_DIR/reports; without a cap a long outage fills the
// volume VAR_DIR is on. Beyond report_spool_max_count reports or
// report_spool_max_bytes bytes the oldest reports are dropped, each with
// an ERROR naming its machine and source: first those a newer report of
// the same source follows (the API's next due date follows the newest
// one), then the oldest of all. The report just written is never dropped,
// nor is one a sender holds, so the newest result of a source is the last
// to go and never goes silently. The metrics (turku_storage_reports_*)
// and the TurkuReportSpoolNearlyFull alert warn at 80 %.
const (
	DefaultSpoolMaxCount = 10000
	DefaultSpoolMaxBytes = 256 << 20
)

// SpoolUsage is what the spool holds and may hold.
type SpoolUsage struct {
	Reports    int
	Bytes      int64
	MaxReports int
	MaxBytes   int64
	// Dropped counts the reports dropped for the cap since start.
	Dropped int64
}

// spoolEntry is one spooled report as the cap sees it.
type spoolEntry struct {
	name  string
	size  int64
	key   [2]string // machine, source; read only when over the cap
	valid bool
}

// listSpool returns the spooled reports, in no order.
func (q *Reports) listSpool() []spoolEntry {
	entries, err := os.ReadDir(q.dir)
	if err != nil {
		return nil
	}
	var out []spoolEntry
	for _, ent := range entries {
		if !queued(ent) {
			continue
		}
		fi, err := ent.Info()
		if err != nil {
			continue // delivered meanwhile
		}
		out = append(out, spoolEntry{name: ent.Name(), size: fi.Size()})
	}
	return out
}

// Usage returns what the spool holds now and its limits.
func (q *Reports) Usage() SpoolUsage {
	u := SpoolUsage{MaxReports: q.maxCount, MaxBytes: q.maxBytes, Dropped: q.dropped.Load()}
	for _, e := range q.listSpool() {
		u.Reports++
		u.Bytes += e.size
	}
	return u
}

// enforceCap drops spooled reports until the spool is within its limits.
func (q *Reports) enforceCap() {
	q.capMu.Lock()
	defer q.capMu.Unlock()
	list := q.listSpool()
	var bytes int64
	for _, e := range list {
		bytes += e.size
	}
	if len(list) <= q.maxCount && bytes <= q.maxBytes {
		return
	}
	// Oldest first: a spooled report's name starts with when it was made.
	slices.SortFunc(list, func(a, b spoolEntry) int { return strings.Compare(a.name, b.name) })
	// Over the cap: learn each report's source, to drop superseded ones
	// first.
	newest := map[[2]string]int{}
	for i := range list {
		data, err := os.ReadFile(filepath.Join(q.dir, list[i].name))
		var sr spooledReport
		if err == nil && json.Unmarshal(data, &sr) == nil {
			list[i].key, list[i].valid = [2]string{sr.Machine, sr.Source}, true
			newest[list[i].key] = i
		}
	}
	over := func() bool { return len(list) > q.maxCount || bytes > q.maxBytes }
	for _, supersededOnly := range []bool{true, false} {
		for i := 0; i < len(list) && over(); {
			e := list[i]
			path := filepath.Join(q.dir, e.name)
			superseded := e.valid && newest[e.key] != i
			if (supersededOnly && !superseded) || !q.claim(path) {
				i++
				continue
			}
			err := os.Remove(path)
			q.unclaim(path)
			if err != nil {
				i++
				continue
			}
			q.dropped.Add(1)
			q.log.Error("report spool full: oldest report dropped", "machine", e.key[0], "source", e.key[1],
				"file", path, "superseded", superseded, "max_count", q.maxCount, "max_bytes", q.maxBytes)
			bytes -= e.size
			if !superseded {
				delete(newest, e.key)
			}
			list = slices.Delete(list, i, i+1)
			for k, j := range newest {
				if j > i {
					newest[k] = j - 1
				}
			}
		}
	}
}
