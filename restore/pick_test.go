package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/backup"
)

func TestPick(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	snaps := []backup.Snapshot{
		{Name: "etc_20261118-031500_aa11", Path: "/m/etc.snapshots/etc_20261118-031500_aa11", SyncFinish: at("2026-11-18T03:15:00Z")},
		{Name: "etc_20261119-231500_bb22", Path: "/m/etc.snapshots/etc_20261119-231500_bb22", SyncFinish: at("2026-11-19T23:15:00Z")},
		{Name: "etc_20261121-031500_cc33", Path: "/m/etc.snapshots/etc_20261121-031500_cc33", SyncFinish: at("2026-11-21T03:15:00Z"), Latest: true},
		// Newer but not "latest": a snapshot taken out of turn keeps the link.
		{Name: "1764040500.12", Path: "/m/etc.snapshots/1764040500.12", SyncFinish: at("2026-11-25T03:15:00Z")},
	}
	tests := []struct {
		name, want, wantName, wantErr string
		loc                           *time.Location
	}{
		{name: "default is latest", want: "", wantName: "etc_20261121-031500_cc33"},
		{name: "latest", want: "latest", wantName: "etc_20261121-031500_cc33"},
		{name: "by name", want: "etc_20261118-031500_aa11", wantName: "etc_20261118-031500_aa11"},
		{name: "old-style name", want: "1764040500.12", wantName: "1764040500.12"},
		{name: "before a date", want: "2026-11-21", wantName: "etc_20261119-231500_bb22"},
		{name: "before a time", want: "2026-11-21T04:00", wantName: "etc_20261121-031500_cc33"},
		{name: "RFC 3339", want: "2026-11-19T23:15:00Z", wantName: "etc_20261118-031500_aa11"},
		// 23:15 UTC is already the 20th in Berlin.
		{name: "date in the configured zone", want: "2026-11-20", loc: berlin, wantName: "etc_20261118-031500_aa11"},
		{name: "date before all", want: "2026-01-01", wantErr: "no snapshot before 2026-01-01T00:00:00Z; the oldest is etc_20261118-031500_aa11"},
		{name: "unknown name", want: "etc_x", wantErr: `no snapshot named "etc_x", and it is not a date`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			got, err := Pick(snaps, "etc", tt.want, loc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error %q", got.Name, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Name != tt.wantName {
				t.Errorf("got %q, %v; want %q", got.Name, err, tt.wantName)
			}
		})
	}
	if _, err := Pick(nil, "etc", "", time.UTC); err == nil || !strings.Contains(err.Error(), "has no snapshots") {
		t.Errorf("no snapshots: %v", err)
	}
}

func TestSubpath(t *testing.T) {
	snap := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(snap, "etc", "nginx"), 0o755)
	os.WriteFile(filepath.Join(snap, "etc", "nginx", "nginx.conf"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(snap, "up"))
	os.Symlink("nginx", filepath.Join(snap, "etc", "web"))
	tests := []struct {
		sub      string
		wantArg  string
		relative bool
		wantErr  string
	}{
		{sub: "", wantArg: snap + "/"},
		{sub: "/", wantArg: snap + "/"},
		{sub: "etc/nginx", wantArg: snap + "/./etc/nginx/", relative: true},
		{sub: "/etc/nginx/", wantArg: snap + "/./etc/nginx/", relative: true},
		{sub: "etc/nginx/nginx.conf", wantArg: snap + "/./etc/nginx/nginx.conf", relative: true},
		{sub: "etc/web", wantArg: snap + "/./etc/web", relative: true}, // the link itself
		{sub: "up", wantArg: snap + "/./up", relative: true},
		{sub: "up/anything", wantErr: "up is a symbolic link in the snapshot"},
		{sub: "etc/web/nginx.conf", wantErr: "etc/web is a symbolic link in the snapshot"},
		{sub: "etc/../..", wantErr: `".." would leave the snapshot`},
		{sub: "..", wantErr: `".." would leave the snapshot`},
		{sub: "etc/nginx/nginx.conf/x", wantErr: "etc/nginx/nginx.conf is not a directory"},
		{sub: "etc/missing", wantErr: "etc/missing does not exist in the snapshot"},
		{sub: "etc\x00", wantErr: "contains NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			got, err := Subpath(snap, tt.sub)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Arg != tt.wantArg || got.Relative != tt.relative {
				t.Errorf("got %+v, %v; want %q relative=%v", got, err, tt.wantArg, tt.relative)
			}
		})
	}
}
