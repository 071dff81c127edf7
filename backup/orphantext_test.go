package backup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestOrphanJSON: `orphans --json` keeps its names and order, and reads
// back.
func TestOrphanJSON(t *testing.T) {
	since := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	list := []Orphan{
		{UUID: "m-1", Unit: "web2", Since: since, Dir: "/srv/turku/m-1", Names: []string{"prod-www-web2"}, Usage: SnapshotUsage{Bytes: 2048, Known: true}},
		{UUID: "m-2", Since: since, Dir: "/srv/turku/m-2", UsageErr: errors.New("ledger unreadable")},
	}
	data, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"uuid":"m-1","unit":"web2","names":["prod-www-web2"],"path":"/srv/turku/m-1","orphaned_since":"2026-11-20T03:00:00Z","usage_bytes":2048,"usage_known":true},` +
		`{"uuid":"m-2","names":null,"path":"/srv/turku/m-2","orphaned_since":"2026-11-20T03:00:00Z","usage_bytes":0,"usage_known":false,"error":"ledger unreadable"}]`
	if string(data) != want {
		t.Errorf("JSON:\ngot  %s\nwant %s", data, want)
	}
	var back []Orphan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(list[0], back[0]); diff != "" || back[1].UsageErr == nil || back[1].UsageErr.Error() != "ledger unreadable" {
		t.Errorf("read back (-want +got):\n%s%+v", diff, back[1])
	}
}

func TestWriteOrphans(t *testing.T) {
	since := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	var b strings.Builder
	if err := WriteOrphans(&b, nil, since); err != nil || b.String() != "No orphaned machines.\n" {
		t.Errorf("no orphans: %q, %v", b.String(), err)
	}
	b.Reset()
	err := WriteOrphans(&b, []Orphan{
		{UUID: "m-1", Unit: "web2", Since: since, Names: []string{"prod-www-web2"}, Usage: SnapshotUsage{Bytes: 1536, Known: true}},
		{UUID: "m-2", Since: since, Usage: SnapshotUsage{Bytes: 10}},
		{UUID: "m-3", Since: since, UsageErr: errors.New("bad ledger")},
	}, since.Add(50*time.Hour+12*time.Minute))
	want := "MACHINE  UNIT  NAMES          ORPHANED SINCE        FOR     SPACE\n" +
		"m-1      web2  prod-www-web2  2026-11-20T03:00:00Z  50h12m  1.5 KiB\n" +
		"m-2      -     -              2026-11-20T03:00:00Z  50h12m  ?\n" +
		"m-3      -     -              2026-11-20T03:00:00Z  50h12m  error: bad ledger\n"
	if err != nil || b.String() != want {
		t.Errorf("table (%v):\ngot\n%s\nwant\n%s", err, b.String(), want)
	}
}

func TestPurgeTexts(t *testing.T) {
	since := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	o := Orphan{UUID: "m-1", Since: since, Usage: SnapshotUsage{Bytes: 3 << 30}}
	if got, want := o.String(), "m-1 (-), orphaned since 2026-11-20T03:00:00Z, at least 3.0 GiB of snapshots"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	p := Purged{UUID: "m-1", Dir: "/srv/turku/m-1", Links: []string{"web1", "m-1"}, Usage: SnapshotUsage{Bytes: 1024, Known: true}}
	if got, want := p.String(), "Purged machine m-1: removed /srv/turku/m-1 (1.0 KiB of snapshots) and web1, m-1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name     string
		assigned func() (map[string]apiclient.MachineInfo, error)
		want     string
	}{
		{"unassigned", func() (map[string]apiclient.MachineInfo, error) { return nil, nil }, ""},
		{"assigned", func() (map[string]apiclient.MachineInfo, error) {
			return map[string]apiclient.MachineInfo{"m-1": {UnitName: "web1"}}, nil
		}, "machine m-1 (web1) is assigned to this storage unit; nothing deleted"},
		{"unreadable", func() (map[string]apiclient.MachineInfo, error) { return nil, errors.New("no cache") },
			"machine m-1: cannot tell whether it is assigned here (key cache: no cache); nothing deleted"},
	} {
		err := PurgeOptions{Assigned: tt.assigned}.checkUnassigned("m-1")
		if got := ""; err != nil {
			got = err.Error()
			if got != tt.want {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
			}
		} else if tt.want != "" {
			t.Errorf("%s: no error, want %q", tt.name, tt.want)
		}
	}
}

// TestPurge: an assigned machine is refused before anything is asked; a
// refusal to confirm deletes nothing; confirmed, the machine goes. What
// is asked about is the UUID when the machine is no recorded orphan.
func TestPurge(t *testing.T) {
	s := newPurgeSite(t)
	dir := filepath.Join(s.vol, orphanUUID)
	asked := 0
	refuse := func(what string) error {
		asked++
		if what != orphanUUID {
			t.Errorf("asked about %q, want %s", what, orphanUUID)
		}
		return errors.New("not confirmed")
	}
	if _, err := Purge(s.opts(orphanUUID), orphanUUID, refuse); !errors.Is(err, ErrAssigned) || asked != 0 {
		t.Errorf("assigned: %v, asked %d times; want ErrAssigned without asking", err, asked)
	}
	if _, err := Purge(s.opts(), orphanUUID, refuse); err == nil || err.Error() != "not confirmed" || asked != 1 {
		t.Errorf("refused: %v, asked %d times", err, asked)
	}
	mustExist(t, dir, filepath.Join(MachinesDir(s.varDir), orphanUUID))
	p, err := Purge(s.opts(), orphanUUID, func(string) error { return nil })
	if err != nil || p.Dir != dir {
		t.Fatalf("confirmed: %+v, %v", p, err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
	mustExist(t, filepath.Join(s.vol, neighbourUUID))
}
