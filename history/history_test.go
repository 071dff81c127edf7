package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func TestAppendCarriesState(t *testing.T) {
	s := New(t.TempDir())
	steps := []struct {
		src          string
		ok           bool
		h            int
		wantFailures int
		wantSince    time.Time
		wantSuccess  time.Time
	}{
		{"etc", false, 0, 1, at(0), time.Time{}},
		{"etc", false, 1, 2, at(0), time.Time{}},
		{"home", true, 1, 0, time.Time{}, at(1).Add(time.Minute)},
		{"etc", true, 2, 0, time.Time{}, at(2).Add(time.Minute)},
		{"etc", false, 3, 1, at(3), at(2).Add(time.Minute)},
	}
	for i, st := range steps {
		got, err := s.Append("m1", Attempt{Source: st.src, Begin: at(st.h), End: at(st.h).Add(time.Minute), Success: st.ok, Summary: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Failures != st.wantFailures || !got.FailingSince.Equal(st.wantSince) || !got.LastSuccess.Equal(st.wantSuccess) {
			t.Errorf("step %d: got failures %d since %v success %v, want %d %v %v", i, got.Failures, got.FailingSince, got.LastSuccess, st.wantFailures, st.wantSince, st.wantSuccess)
		}
	}
	// A new Store (a restart) continues from the file.
	s2 := New(s.Dir())
	got, err := s2.Append("m1", Attempt{Source: "etc", Begin: at(4), End: at(4), Success: false})
	if err != nil {
		t.Fatal(err)
	}
	if got.Failures != 2 || !got.FailingSince.Equal(at(3)) || !got.LastSuccess.Equal(at(2).Add(time.Minute)) {
		t.Errorf("after restart: got %+v", got)
	}
	latest, err := s2.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(latest["m1"]); n != 2 {
		t.Fatalf("latest has %d sources, want 2", n)
	}
	if a := latest["m1"]["etc"]; a.Failures != 2 {
		t.Errorf("latest etc failures %d, want 2", a.Failures)
	}
	recs, _ := s2.Read("m1")
	if len(recs) != 6 {
		t.Errorf("read %d records, want 6", len(recs))
	}
}

func TestTornLineIsSkippedAndRepaired(t *testing.T) {
	s := New(t.TempDir())
	if _, err := s.Append("m1", Attempt{Source: "etc", Begin: at(0), End: at(0), Success: true}); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a write leaves half a line.
	path := filepath.Join(s.Dir(), "m1.jsonl")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"source":"etc","success":fa`)
	f.Close()
	s = New(s.Dir())
	got, err := s.Append("m1", Attempt{Source: "etc", Begin: at(1), End: at(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Failures != 1 || !got.LastSuccess.Equal(at(0)) {
		t.Errorf("got %+v", got)
	}
	recs, err := s.Read("m1")
	if err != nil || len(recs) != 2 {
		t.Fatalf("read %d records (%v), want 2", len(recs), err)
	}
}

func TestCompactionKeepsEachSourcesNewest(t *testing.T) {
	s := New(t.TempDir())
	if _, err := s.Append("m1", Attempt{Source: "rare", Begin: at(0), End: at(0), Success: true}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", maxSummary)
	n := 2 * compactAbove / maxSummary
	for i := range n {
		if _, err := s.Append("m1", Attempt{Source: "etc", Begin: at(i + 1), End: at(i + 1), Summary: big}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(s.Dir(), "m1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > compactAbove+2*maxSummary {
		t.Errorf("file is %d bytes after %d appends, want at most about %d", st.Size(), n+1, compactAbove)
	}
	latest, _ := New(s.Dir()).Latest()
	if _, ok := latest["m1"]["rare"]; !ok {
		t.Error("compaction dropped the only record of source rare")
	}
	if a := latest["m1"]["etc"]; a.Failures != n {
		t.Errorf("etc failures %d, want %d (carried through compaction)", a.Failures, n)
	}
}

func TestSetAssigned(t *testing.T) {
	s := New(t.TempDir())
	got, err := s.SetAssigned(map[string]string{"a": "web1", "b": "web2"}, at(0))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	got, err = New(s.Dir()).SetAssigned(map[string]string{"a": "web1-renamed", "c": "db"}, at(5))
	if err != nil {
		t.Fatal(err)
	}
	if !got["a"].Since.Equal(at(0)) || got["a"].Unit != "web1-renamed" || !got["c"].Since.Equal(at(5)) {
		t.Errorf("got %v", got)
	}
	if _, ok := got["b"]; ok {
		t.Error("a machine no longer listed is still assigned")
	}
	read, err := s.Assigned()
	if err != nil || len(read) != 2 || !read["c"].Since.Equal(at(5)) {
		t.Errorf("read back %v, %v", read, err)
	}
}

func TestBadMachineName(t *testing.T) {
	s := New(t.TempDir())
	for _, m := range []string{"", "..", "a/b", "x\x00"} {
		if _, err := s.Append(m, Attempt{Source: "etc"}); err == nil {
			t.Errorf("Append(%q) succeeded", m)
		}
	}
	entries, _ := os.ReadDir(s.Dir())
	if len(entries) != 0 {
		t.Errorf("bad names wrote %d entries", len(entries))
	}
}

func TestRecordRefreshOrphansAndDepartures(t *testing.T) {
	s := New(t.TempDir())
	onDisk := []string{"a", "b"}
	if _, err := s.RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}, "b": {"web2", "kb"}}, OnDisk: onDisk}, at(0)); err != nil {
		t.Fatal(err)
	}
	// b moved away: an orphan (it has data) and a departure (its key).
	got, err := New(s.Dir()).RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}}, OnDisk: onDisk}, at(1))
	if err != nil {
		t.Fatal(err)
	}
	if o := got.Orphans["b"]; len(got.Orphans) != 1 || o.Unit != "web2" || !o.Since.Equal(at(1)) {
		t.Errorf("orphans %v, want b (web2) since %v", got.Orphans, at(1))
	}
	if d := got.Departed["b"]; len(got.Departed) != 1 || d.Key != "kb" || d.Unit != "web2" {
		t.Errorf("departed %v, want b with key kb", got.Departed)
	}
	// A disk that cannot be read keeps the orphans; a later refresh keeps
	// their time.
	got, _ = s.RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}}, DiskErr: os.ErrPermission}, at(2))
	if !got.Orphans["b"].Since.Equal(at(1)) {
		t.Errorf("orphans after an unreadable disk: %v", got.Orphans)
	}
	got, _ = s.RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}}, OnDisk: onDisk}, at(3))
	if !got.Orphans["b"].Since.Equal(at(1)) || !got.Departed["b"].Since.Equal(at(1)) {
		t.Errorf("times moved: orphans %v departed %v", got.Orphans, got.Departed)
	}
	// Departures are forgotten after DepartedKeep.
	later := at(1).Add(DepartedKeep + time.Hour)
	got, _ = s.RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}}, OnDisk: onDisk}, later)
	if len(got.Departed) != 0 || len(got.Orphans) != 1 {
		t.Errorf("after %v: departed %v (want none), orphans %v (want b still)", DepartedKeep, got.Departed, got.Orphans)
	}
	// Assigned here again: neither orphan nor departed.
	got, _ = s.RecordRefresh(Listing{Machines: map[string]Listed{"a": {"web1", "ka"}, "b": {"web2", "kb"}}, OnDisk: onDisk}, later)
	if len(got.Orphans) != 0 || len(got.Departed) != 0 {
		t.Errorf("b back: orphans %v departed %v", got.Orphans, got.Departed)
	}
}

func TestDepartedIsBounded(t *testing.T) {
	s := New(t.TempDir())
	all := map[string]Listed{}
	for i := range MaxDeparted + 5 {
		all[strings.Repeat("x", 1)+time.Duration(i).String()] = Listed{Key: "k"}
	}
	if _, err := s.RecordRefresh(Listing{Machines: all}, at(0)); err != nil {
		t.Fatal(err)
	}
	got, err := s.RecordRefresh(Listing{}, at(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Departed) != MaxDeparted {
		t.Errorf("%d departures kept, want %d", len(got.Departed), MaxDeparted)
	}
}

// TestAssignedKnown: a refresh that lists no machine is recorded (the file
// is written even empty), so that it is told from none recorded.
func TestAssignedKnown(t *testing.T) {
	s := New(t.TempDir())
	if m, known, err := s.AssignedKnown(); err != nil || known || len(m) != 0 {
		t.Fatalf("fresh store: %v, known %v, %v", m, known, err)
	}
	if _, err := s.RecordRefresh(Listing{Machines: map[string]Listed{}}, at(0)); err != nil {
		t.Fatal(err)
	}
	if m, known, err := New(s.Dir()).AssignedKnown(); err != nil || !known || len(m) != 0 {
		t.Errorf("after an empty refresh: %v, known %v, %v; want known and empty", m, known, err)
	}
	s2 := New(t.TempDir())
	if _, err := s2.SetAssigned(map[string]string{}, at(0)); err != nil {
		t.Fatal(err)
	}
	if _, known, err := s2.AssignedKnown(); err != nil || !known {
		t.Errorf("after an empty SetAssigned: known %v, %v; want known", known, err)
	}
}
