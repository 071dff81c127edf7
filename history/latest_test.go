package history

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestLatestFromItsFile: Latest answers from the newest-records file
// while it matches the machine's history, and from the history itself
// when the file is missing (a history older than it), damaged, or
// behind the history (a crash between the append and it, a line added
// by another writer); each way gives what the history says.
func TestLatestFromItsFile(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	for i, a := range []Attempt{
		{Source: "etc", Begin: at(0), End: at(1), Success: true, Snapshot: "etc_1"},
		{Source: "home", Begin: at(0), End: at(1), Success: false, Summary: "rsync exited with return code 23"},
		{Source: "etc", Begin: at(24), End: at(25), Success: true, Snapshot: "etc_2"},
	} {
		if _, err := s.Append("m1", a); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	jsonl, side := filepath.Join(dir, "m1.jsonl"), filepath.Join(dir, "m1"+latestSuffix)
	recs, err := s.Read("m1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]Attempt{"m1": newest(recs)}
	latest := func(step string) map[string]map[string]Attempt {
		t.Helper()
		got, err := New(dir).Latest()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return got
	}
	if diff := cmp.Diff(want, latest("current")); diff != "" {
		t.Errorf("current (-want +got):\n%s", diff)
	}

	// It is that file that is read: a change to it alone shows.
	data, err := os.ReadFile(side)
	if err != nil {
		t.Fatal(err)
	}
	marked := strings.Replace(string(data), "etc_2", "etc_X", 1)
	if err := os.WriteFile(side, []byte(marked), 0o640); err != nil {
		t.Fatal(err)
	}
	if got := latest("marked")["m1"]["etc"].Snapshot; got != "etc_X" {
		t.Errorf("Latest read %q, want etc_X from %s", got, side)
	}

	for _, tt := range []struct {
		name  string
		setup func(t *testing.T)
	}{
		{"missing", func(t *testing.T) { os.Remove(side) }},
		{"damaged", func(t *testing.T) { os.WriteFile(side, []byte(`{"jsonl_size": `), 0o640) }},
		{"behind", func(t *testing.T) {
			line, _ := json.Marshal(Attempt{Source: "var", Begin: at(30), End: at(31), Success: true})
			f, err := os.OpenFile(jsonl, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(append(line, '\n'))
			f.Close()
			recs, err := New(dir).Read("m1")
			if err != nil {
				t.Fatal(err)
			}
			want["m1"] = newest(recs)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(side, []byte(marked), 0o640); err != nil {
				t.Fatal(err)
			}
			tt.setup(t)
			if diff := cmp.Diff(want, latest(tt.name)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if len(want["m1"]) != 3 {
		t.Errorf("the line added behind the file's back was not read: %v", want["m1"])
	}
}

// TestLatestAfterCompaction: the newest-records file follows the machine's
// history through compaction, and leaves no temporary file behind.
func TestLatestAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	s := New(dir)
	big := strings.Repeat("x", maxSummary)
	for h := range compactAbove/maxSummary + 10 {
		if _, err := s.Append("m1", Attempt{Source: "etc", Begin: at(h), End: at(h + 1), Summary: big}); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "m1.jsonl"))
	if err != nil || fi.Size() > compactAbove {
		t.Fatalf("not compacted: %v, %v", fi, err)
	}
	var lf latestFile
	data, err := os.ReadFile(filepath.Join(dir, "m1"+latestSuffix))
	if err != nil || json.Unmarshal(data, &lf) != nil || lf.Size != fi.Size() || lf.ModTime != fi.ModTime().UnixNano() {
		t.Errorf("newest-records file %+v does not match the compacted history (%d bytes): %v", lf.Size, fi.Size(), err)
	}
	names := agenttest.DirNames(t, dir)
	if diff := cmp.Diff([]string{"m1.jsonl", "m1" + latestSuffix}, names); diff != "" {
		t.Errorf("history directory (-want +got):\n%s", diff)
	}
}
