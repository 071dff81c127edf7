package backup

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/retention/*.golden")

// dirEntry is one thing in a test snapshot directory.
type dirEntry struct {
	name    string
	json    string // contents of <name>.json, "" for none
	symlink string // make a symlink to this instead of a directory
	file    bool   // make a plain file instead of a directory
}

// ours returns a snapshot named and described the way this package writes
// them, finishing at wall time ts in loc.
func ours(loc *time.Location, ts, hex4 string) dirEntry {
	t := mustTime(loc, ts)
	name := snapshotName("etc", t, hex4)
	return dirEntry{name: name, json: string(encodeInfo(name, "", t.Add(-time.Minute), t, nil))}
}

// oursAt is ours for a time given with its offset, for ambiguous wall
// times around DST changes.
func oursAt(loc *time.Location, rfc3339, hex4 string) dirEntry {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	t = t.In(loc)
	name := snapshotName("etc", t, hex4)
	return dirEntry{name: name, json: string(encodeInfo(name, "", t.Add(-time.Minute), t, nil))}
}

func mustTime(loc *time.Location, ts string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", ts, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// makeSnapshotDir lays out entries as MACHINE/etc.snapshots.
func makeSnapshotDir(t testing.TB, entries []dirEntry) string {
	t.Helper()
	machine := t.TempDir()
	dir := filepath.Join(machine, "etc.snapshots")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.name)
		var err error
		switch {
		case e.symlink != "":
			err = os.Symlink(e.symlink, p)
		case e.file:
			err = os.WriteFile(p, []byte("x"), 0o644)
		default:
			err = os.Mkdir(p, 0o755)
		}
		if err == nil && e.json != "" {
			err = os.WriteFile(p+".json", []byte(e.json), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return machine
}

type retentionCase struct {
	name string
	zone string
	now  string
	spec string
	// finishes are snapshots of ours, numbered 0001, 0002, ... in order,
	// each a wall time in zone or an RFC 3339 time with its offset.
	finishes []string
	// entries, when set, replaces finishes for directories with more
	// than our own snapshots in them.
	entries func(loc *time.Location) []dirEntry
}

// dirEntries lays out the case's snapshot directory in loc.
func (tc retentionCase) dirEntries(loc *time.Location) []dirEntry {
	if tc.entries != nil {
		return tc.entries(loc)
	}
	var es []dirEntry
	for i, ts := range tc.finishes {
		hex4 := fmt.Sprintf("%04d", i+1)
		if strings.Contains(ts, "T") {
			es = append(es, oursAt(loc, ts, hex4))
		} else {
			es = append(es, ours(loc, ts, hex4))
		}
	}
	return es
}

var retentionCases = []retentionCase{
	{
		name: "month-boundary", zone: "UTC", now: "2026-12-01 00:30:00",
		spec: "earliest of month, last 2 snapshots",
		finishes: []string{
			"2026-10-15 03:00:00", "2026-11-01 03:00:00", "2026-11-15 03:00:00",
			"2026-11-30 23:59:59", "2026-12-01 00:00:00", "2026-12-01 00:20:00",
		},
	},
	{
		name: "multi-month", zone: "UTC", now: "2026-01-10 12:00:00",
		spec: "earliest of 3 months",
		// Cutoff 2025-11-01: crosses a year boundary.
		finishes: []string{
			"2025-10-31 23:59:59", "2025-11-01 00:00:01", "2025-12-01 03:00:00",
			"2026-01-10 03:00:00",
		},
	},
	{
		name: "week-boundary", zone: "UTC", now: "2026-11-29 00:10:00", // a Sunday
		spec:     "earliest of week",
		finishes: []string{"2026-11-28 23:59:00", "2026-11-29 00:00:00", "2026-11-29 00:05:00"},
	},
	{
		// Wednesday: the most recent Sunday is Nov 22, two weeks before
		// that Nov 8. The old code jumped to the 1st of the month instead.
		name: "multi-week", zone: "UTC", now: "2026-11-25 12:00:00",
		spec: "earliest of 3 weeks",
		finishes: []string{
			"2026-11-01 01:00:00", "2026-11-07 23:00:00", "2026-11-08 01:00:00",
			"2026-11-15 01:00:00", "2026-11-22 01:00:00", "2026-11-25 01:00:00",
		},
	},
	{
		// A fortnight is two weeks: cutoff Sunday Nov 15.
		name: "fortnight", zone: "UTC", now: "2026-11-25 12:00:00",
		spec: "earliest of fortnight",
		finishes: []string{
			"2026-11-08 01:00:00", "2026-11-14 23:59:59", "2026-11-15 01:00:00",
			"2026-11-22 01:00:00", "2026-11-25 01:00:00",
		},
	},
	{
		name: "last-days", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     "last 5 days",
		finishes: []string{"2026-11-20 11:59:59", "2026-11-20 12:00:00", "2026-11-24 12:00:00"},
	},
	{
		// The old storage unit matched items in lower case only: for it
		// this spec kept nothing, so nothing was deleted. An upgrade must
		// not start deleting.
		name: "capitalised-spec-deletes-nothing", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     "Last 5 Days",
		finishes: []string{"2026-11-20 11:59:59", "2026-11-20 12:00:00", "2026-11-24 12:00:00"},
	},
	{
		// DST ended on Sunday 2026-10-25 at 03:00 CEST (02:00 CET): the
		// wall time 02:30 happened twice. Day and week cutoffs are local
		// midnights; "last 1 days" is exactly 24 hours.
		name: "dst-berlin-autumn", zone: "Europe/Berlin", now: "2026-10-26 12:00:00",
		spec: "earliest of day, earliest of week, last 1 days",
		finishes: []string{
			"2026-10-24 23:30:00", "2026-10-25 00:10:00", "2026-10-25T02:30:00+02:00",
			"2026-10-25T02:30:00+01:00", "2026-10-25 11:59:00", "2026-10-25 12:30:00",
			"2026-10-26 00:30:00", "2026-10-26 11:00:00",
		},
	},
	{
		// DST began on Sunday 2026-03-08 at 02:00 EST: that day had 23
		// hours, so 24 hours before Monday 00:30 EDT is Saturday 23:30 EST.
		name: "dst-newyork-spring", zone: "America/New_York", now: "2026-03-09 00:30:00",
		spec: "earliest of day, earliest of 2 days, last 1 days",
		finishes: []string{
			"2026-03-07 23:29:00", "2026-03-07 23:30:00", "2026-03-08 00:15:00",
			"2026-03-08 03:30:00", "2026-03-09 00:10:00",
		},
	},
	{
		name: "old-names", zone: "UTC", now: "2026-11-25 12:00:00",
		spec: "last 4 snapshots",
		entries: func(l *time.Location) []dirEntry {
			return []dirEntry{
				{name: "1424392000"},
				{name: "1424392089.43"},
				{name: "2015-02-20T03:20:36"},
				{name: "2015-02-20T03:21:18.152575"},
				{name: "1424399999", json: `{"name": "renamed-in-json", "base": null}`},
				{name: "etc_20261124-031500_abcd", json: `{"sync_finish": "2026-11-24T03:15:00+00:00"}`},
				ours(l, "2026-11-25 03:15:00", "beef"),
				{name: "save-2015-02-20T03:20:36"},
				{name: "etc_20261101-000000_0000-save"},
				{name: "2015-02-21T00:00:00-saved"},
				{name: "working"},
				{name: "_delete-etc_20260101-000000_dead"},
				{name: "notes"},
				{name: "garbage", json: `{"sync_finish": "yesterday"}`},
				{name: "broken-json-1424392000", json: `{`},
				{name: "README", file: true},
				{name: "latest", symlink: "etc_20261125-031500_beef"},
			}
		},
	},
	{
		// Nothing would be kept: nothing is deleted.
		name: "empty-keep", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     "earliest of month, last 1 days",
		finishes: []string{"2026-10-01 01:00:00", "2026-10-20 01:00:00"},
	},
	{
		// The newest snapshot survives even when no item keeps it.
		name: "newest-always-kept", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     "earliest of month",
		finishes: []string{"2026-11-01 01:00:00", "2026-11-10 01:00:00", "2026-11-24 01:00:00"},
	},
	{
		name: "unknown-item", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     "last 5 days, forever",
		finishes: []string{"2026-01-01 01:00:00", "2026-11-24 01:00:00"},
	},
	{
		name: "empty-spec", zone: "UTC", now: "2026-11-25 12:00:00",
		spec:     " , ",
		finishes: []string{"2026-01-01 01:00:00", "2026-11-24 01:00:00"},
	},
}

// renderPlan is the golden form of a retention decision.
func renderPlan(t *testing.T, tc retentionCase) string {
	loc := mustLoc(t, tc.zone)
	now := mustTime(loc, tc.now)
	machine := makeSnapshotDir(t, tc.dirEntries(loc))
	snaps, err := ListSnapshots(machine, "etc", loc)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "now:       %s (%s)\nretention: %q\n", now.Format("2006-01-02 15:04:05 MST"), now.Weekday(), tc.spec)
	ret, perr := ParseRetention(tc.spec)
	var plan []Decision
	if perr != nil {
		fmt.Fprintf(&b, "error:     %v\n", perr)
		for _, s := range snaps {
			plan = append(plan, Decision{Snapshot: s, KeptBy: []string{"retention error"}})
		}
	} else {
		plan = ret.Plan(snaps, now)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	listed := map[string]bool{}
	for _, d := range plan {
		verdict, why := "delete", ""
		if len(d.KeptBy) > 0 {
			verdict, why = "keep", strings.Join(d.KeptBy, "; ")
		}
		name := d.Snapshot.dirName()
		if d.Snapshot.Name != name {
			name += " (" + d.Snapshot.Name + ")"
		}
		if d.Snapshot.Latest {
			name += " *latest"
		}
		listed[d.Snapshot.dirName()] = true
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", verdict, name, d.Snapshot.SyncFinish.In(loc).Format("2006-01-02 15:04:05 MST"), why)
	}
	for _, e := range tc.dirEntries(loc) {
		if !listed[e.name] {
			fmt.Fprintf(tw, "ignore\t%s\t\tnot a snapshot\n", e.name)
		}
	}
	tw.Flush()
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func TestRetentionGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range retentionCases {
		t.Run(tc.name, func(t *testing.T) {
			got := renderPlan(t, tc)
			path := filepath.Join("testdata", "retention", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("plan mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRetentionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want string
	}{
		{"forever", `retention item "forever": unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`},
		{"last 5 days, forever", `retention item "forever": unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`},
		{"last 0 days", `retention item "last 0 days": count "0": want a whole number from 1 to 100000`},
		{"last -1 snapshots", `retention item "last -1 snapshots": count "-1": want a whole number from 1 to 100000`},
		{"last +1 snapshots", `retention item "last +1 snapshots": count "+1": want a whole number from 1 to 100000`},
		{"last 100001 days", `retention item "last 100001 days": count "100001": want a whole number from 1 to 100000`},
		{"last 5 weeks", `retention item "last 5 weeks": unknown unit "weeks": want days or snapshots`},
		{"earliest of year", `retention item "earliest of year": unknown unit "year": want day, week, fortnight or month`},
		{"earliest of 0 months", `retention item "earliest of 0 months": count "0": want a whole number from 1 to 100000`},
		{"last 5 days ago", `retention item "last 5 days ago": unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`},
		{"earliest month", `retention item "earliest month": unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`},
		{"LAST 5 DAYS", `retention item "LAST 5 DAYS": unknown item: want "last N days", "last N snapshots" or "earliest of [N] day|week|fortnight|month"`},
		{"last 5 Days", `retention item "last 5 Days": unknown unit "Days": want days or snapshots`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := ParseRetention(tt.spec)
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRetentionAccepts(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{
		"", "last 5 days", "last 1 day", "last 7 snapshots", "last 1 snapshot",
		"earliest of month", "earliest of 2 months", "earliest of day", "earliest of 3 days",
		"earliest of week", "earliest of 2 weeks", "earliest of fortnight", "earliest of 2 fortnights",
		"last 5 days, earliest of month, earliest of week", "  last   5   days  ,", "earliest of 1 month",
	} {
		if _, err := ParseRetention(spec); err != nil {
			t.Errorf("ParseRetention(%q): %v", spec, err)
		}
	}
}

// fuzzSnapshots is a fixed history for FuzzRetentionSpec: one snapshot a
// day at 03:00 in Berlin through a DST change, plus a few extra.
func fuzzSnapshots(loc *time.Location) []Snapshot {
	var out []Snapshot
	start := time.Date(2026, 9, 1, 3, 0, 0, 0, loc)
	for i := range 90 {
		t := start.AddDate(0, 0, i)
		out = append(out, Snapshot{Name: snapshotName("etc", t, "0000"), Path: "/x/etc.snapshots/" + snapshotName("etc", t, fmt.Sprintf("%04x", i)), SyncFinish: t})
	}
	return out
}

func FuzzRetentionSpec(f *testing.F) {
	for _, tc := range retentionCases {
		f.Add(tc.spec, int64(0))
	}
	f.Add("earliest of 100000 months, last 100000 days", int64(86400*30))
	f.Add("last 3 snapshots,,earliest of 2 fortnights", int64(-86400*100))
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	snaps := fuzzSnapshots(loc)
	base := time.Date(2026, 11, 29, 12, 0, 0, 0, loc)
	f.Fuzz(func(t *testing.T, spec string, offset int64) {
		ret, err := ParseRetention(spec)
		if err != nil {
			return
		}
		now := base.Add(time.Duration(offset%(86400*400)) * time.Second)
		plan := ret.Plan(snaps, now)
		if len(plan) != len(snaps) {
			t.Fatalf("plan has %d decisions for %d snapshots", len(plan), len(snaps))
		}
		del := ret.ToDelete(snaps, now)
		if len(del) == len(snaps) {
			t.Fatalf("spec %q deletes every snapshot", spec)
		}
		for _, d := range del {
			if d.Path == newest(snaps).Path {
				t.Fatalf("spec %q deletes the newest snapshot", spec)
			}
		}
	})
}
