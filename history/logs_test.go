package history

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWriteEntries: a header row over aligned columns, a failure's summary
// indented under its row, and one file counted as one.
func TestWriteEntries(t *testing.T) {
	end := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	entries := []Entry{
		{Machine: "m-1", Attempt: Attempt{Source: "home", Unit: "web1", Begin: end.Add(-90 * time.Second), End: end,
			Failures: 2, Summary: "rsync exited with return code 5\n@ERROR: auth failed on module home\n"}},
		{Machine: "m-1", Attempt: Attempt{Source: "etc", Unit: "web1", Begin: end.Add(-time.Hour - time.Minute), End: end.Add(-time.Hour),
			Success: true, Snapshot: "etc_20261201-020000_ab12", TotalSize: 2048, TransferredSize: 1024, Files: 1}},
	}
	var out bytes.Buffer
	if err := WriteEntries(&out, entries, time.UTC); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"FINISHED              UNIT  SOURCE  RESULT     SNAPSHOT                  DURATION  TRANSFERRED",
		"2026-12-01T03:00:00Z  web1  home    failed(2)  -                         1m30s     -",
		"    rsync exited with return code 5",
		"    @ERROR: auth failed on module home",
		"2026-12-01T02:00:00Z  web1  etc     ok         etc_20261201-020000_ab12  1m0s      1.0 KiB of 2.0 KiB, 1 file",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}

// TestQueryAndFindMachine: --failed and --limit select newest first, and
// a machine is found by UUID, through the links, or by a unique unit name.
func TestQueryAndFindMachine(t *testing.T) {
	s := New(t.TempDir())
	t0 := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for i, r := range []struct {
		machine, unit, source string
		ok                    bool
	}{
		{"m-a", "web1", "etc", true}, {"m-a", "web1", "var", false}, {"m-b", "db1", "etc", false}, {"m-c", "db1", "etc", true},
	} {
		end := t0.Add(time.Duration(i) * time.Hour)
		if _, err := s.Append(r.machine, Attempt{Source: r.source, Unit: r.unit, Begin: end.Add(-time.Minute), End: end, Success: r.ok}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		q    Query
		want []string
	}{
		{"all", Query{}, []string{"m-c/etc", "m-b/etc", "m-a/var", "m-a/etc"}},
		{"failed", Query{Failed: true}, []string{"m-b/etc", "m-a/var"}},
		{"limit", Query{Limit: 1}, []string{"m-c/etc"}},
		{"machine and source", Query{Machine: "m-a", Source: "etc"}, []string{"m-a/etc"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Query(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range got {
				names = append(names, e.Machine+"/"+e.Source)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	links := func(name string) (string, error) {
		if name == "prod-www-web1" {
			return "m-a", nil
		}
		return "", errors.New("no such link")
	}
	for _, tt := range []struct{ name, want, err string }{
		{"m-b", "m-b", ""},
		{"prod-www-web1", "m-a", ""},
		{"web1", "m-a", ""},
		{"db1", "", `machine "db1": the unit name of several machines (m-b, m-c): give the UUID`},
		{"nope", "", `machine "nope": no backup history on this storage unit (not a UUID, name or unit name it knows)`},
	} {
		got, err := s.FindMachine(tt.name, links)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("FindMachine(%q) = %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.err)
		}
	}
}
