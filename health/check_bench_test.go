package health

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/history"
)

// benchAttempts is how many attempts of each source a machine's history
// holds in BenchmarkCheck: a month of nightly backups.
const benchAttempts = 30

// checkTree lays out machines × 3 sources × 5 daily snapshots (with
// their .json and latest link) and each machine's history of
// benchAttempts attempts per source, the last one appended as serve
// does, under a VAR_DIR of its own.
func checkTree(b *testing.B, machines int) string {
	b.Helper()
	root := b.TempDir()
	varDir, vol := filepath.Join(root, "var"), filepath.Join(root, "vol")
	hdir := filepath.Join(varDir, history.DirName)
	for _, d := range []string{backup.MachinesDir(varDir), hdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	hist := history.New(hdir)
	t0 := time.Now().Add(-5 * 24 * time.Hour).UTC().Truncate(time.Second)
	for i := range machines {
		uuid := fmt.Sprintf("%08x-1b2c-4d3e-8f9a-0b1c2d3e4f50", i)
		dir := filepath.Join(vol, uuid)
		var lines []byte
		for _, src := range []string{"etc", "home", "var"} {
			sd := filepath.Join(dir, src+".snapshots")
			var name string
			for k := range 5 {
				t := t0.Add(time.Duration(k) * 24 * time.Hour)
				name = fmt.Sprintf("%s_%s_%04x", src, t.Format("20060102-150405"), (i+k)&0xffff)
				if err := os.MkdirAll(filepath.Join(sd, name), 0o755); err != nil {
					b.Fatal(err)
				}
				info := fmt.Sprintf(`{"base": null, "bytes_received": 1000, "files": 200, "files_transferred": 3, "name": %q, "new_files": 1, "sync_begin": %q, "sync_finish": %q, "total_size": 100000, "transferred_size": 900}`,
					name, t.Format("2006-01-02T15:04:05-07:00"), t.Add(time.Minute).Format("2006-01-02T15:04:05-07:00"))
				if err := os.WriteFile(filepath.Join(sd, name+".json"), []byte(info), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			if err := os.Symlink(name, filepath.Join(sd, "latest")); err != nil {
				b.Fatal(err)
			}
			for k := range benchAttempts - 1 {
				end := t0.Add(time.Duration(k-benchAttempts) * 24 * time.Hour)
				line, _ := json.Marshal(history.Attempt{Source: src, Unit: "unit", Begin: end.Add(-time.Minute), End: end, Success: true,
					Snapshot: name, Summary: "sent 900 bytes  received 1000 bytes", TotalSize: 100000, Files: 200, LastSuccess: end})
				lines = append(append(lines, line...), '\n')
			}
		}
		if err := os.WriteFile(filepath.Join(hdir, uuid+".jsonl"), lines, 0o640); err != nil {
			b.Fatal(err)
		}
		for _, src := range []string{"etc", "home", "var"} {
			end := t0.Add(4*24*time.Hour + time.Minute)
			name := fmt.Sprintf("%s_%s_%04x", src, t0.Add(4*24*time.Hour).Format("20060102-150405"), (i+4)&0xffff)
			if _, err := hist.Append(uuid, history.Attempt{Source: src, Unit: "unit", Begin: end.Add(-time.Minute), End: end, Success: true, Snapshot: name}); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.Symlink(dir, filepath.Join(backup.MachinesDir(varDir), uuid)); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink(uuid, filepath.Join(backup.MachinesDir(varDir), fmt.Sprintf("prod-web-unit%05d", i))); err != nil {
			b.Fatal(err)
		}
	}
	return varDir
}

// BenchmarkCheck is `check` on a unit of 1,000 and 10,000 machines ×
// 3 sources × 5 snapshots with a month of history: "walk" is what it
// read before the snapshot index (every snapshot's .json, every
// machine's whole history), "check" is Check as it is, its index up to
// date.
func BenchmarkCheck(b *testing.B) {
	for _, machines := range []int{1000, 10000} {
		varDir := checkTree(b, machines)
		o := Options{VarDir: varDir, Location: time.UTC, MaxAge: 48 * time.Hour, Now: time.Now()}
		b.Run(fmt.Sprintf("machines=%d/walk", machines), func(b *testing.B) {
			hist := history.New(filepath.Join(varDir, history.DirName))
			for b.Loop() {
				inv, err := backup.Inventory(b.Context(), varDir, time.UTC)
				if err != nil || len(inv) != machines {
					b.Fatalf("got %d machines, %v", len(inv), err)
				}
				ms, err := hist.Machines()
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, m := range ms {
					recs, err := hist.Read(m)
					if err != nil {
						b.Fatal(err)
					}
					n += len(recs)
				}
				if n != machines*3*benchAttempts {
					b.Fatalf("read %d attempts, want %d", n, machines*3*benchAttempts)
				}
			}
		})
		b.Run(fmt.Sprintf("machines=%d/check", machines), func(b *testing.B) {
			if _, err := Check(b.Context(), o); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				r, err := Check(b.Context(), o)
				if err != nil || r.State != OK {
					b.Fatalf("state %d, %v: %v", r.State, err, r.Details)
				}
			}
		})
	}
}
