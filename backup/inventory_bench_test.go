package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// invBenchSnapshots is how many snapshots each source keeps in
// BenchmarkInventory: "last 5 days" of daily backups.
const invBenchSnapshots = 5

// inventoryTree lays out machines × 3 sources × invBenchSnapshots
// snapshots (empty trees with their .json and latest link) under a
// VAR_DIR and volume of its own, as serve leaves them.
func inventoryTree(b *testing.B, machines int) string {
	b.Helper()
	root := b.TempDir()
	varDir, vol := filepath.Join(root, "var"), filepath.Join(root, "vol")
	if err := os.MkdirAll(MachinesDir(varDir), 0o755); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	for i := range machines {
		uuid := fmt.Sprintf("%08x-1b2c-4d3e-8f9a-0b1c2d3e4f50", i)
		dir := filepath.Join(vol, uuid)
		for _, src := range []string{"etc", "home", "var"} {
			sd := filepath.Join(dir, src+snapshotsSuffix)
			if err := os.MkdirAll(sd, 0o755); err != nil {
				b.Fatal(err)
			}
			var name string
			for k := range invBenchSnapshots {
				t := t0.Add(time.Duration(k) * 24 * time.Hour)
				name = snapshotName(src, t, fmt.Sprintf("%04x", (i+k)&0xffff))
				if err := os.Mkdir(filepath.Join(sd, name), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(sd, name+".json"), encodeInfo(name, "", t, t.Add(time.Minute), nil), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			if err := os.Symlink(name, filepath.Join(sd, latestLink)); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.Symlink(dir, filepath.Join(MachinesDir(varDir), uuid)); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink(uuid, filepath.Join(MachinesDir(varDir), fmt.Sprintf("prod-web-unit%05d", i))); err != nil {
			b.Fatal(err)
		}
	}
	return varDir
}

// BenchmarkInventory is what `snapshots` (the overview) and `check` read
// first on a unit of 10,000 machines × 3 sources × 5 snapshots. "full"
// reads every snapshot's .json (Inventory, what both read before the
// index, and `snapshots --json` still); "index" is Summaries with its
// index up to date (one stat per machine and snapshot directory);
// "index_all_changed" with every directory's stamp changed, as after a
// night that backed up every source (each directory listed again, the
// .json of the snapshots it knows not read). "newest only" is the
// reference for a listing that reads only each source's latest link and
// that snapshot's .json.
func BenchmarkInventory(b *testing.B) {
	for _, machines := range []int{1000, 10000} {
		varDir := inventoryTree(b, machines)
		b.Run(fmt.Sprintf("machines=%d/full", machines), func(b *testing.B) {
			for b.Loop() {
				ms, err := Inventory(context.Background(), varDir, time.UTC)
				if err != nil || len(ms) != machines {
					b.Fatalf("got %d machines, %v", len(ms), err)
				}
			}
		})
		b.Run(fmt.Sprintf("machines=%d/index", machines), func(b *testing.B) {
			benchSummaries(b, varDir, machines, nil)
		})
		b.Run(fmt.Sprintf("machines=%d/index_all_changed", machines), func(b *testing.B) {
			benchSummaries(b, varDir, machines, staleIndex)
		})
		b.Run(fmt.Sprintf("machines=%d/newest_only", machines), func(b *testing.B) {
			for b.Loop() {
				entries, err := os.ReadDir(MachinesDir(varDir))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for _, e := range entries {
					target, err := os.Readlink(filepath.Join(MachinesDir(varDir), e.Name()))
					if err != nil || !filepath.IsAbs(target) {
						continue
					}
					srcs, err := ListSources(target)
					if err != nil {
						b.Fatal(err)
					}
					for _, src := range srcs {
						sd := snapshotsDir(target, src)
						name, err := os.Readlink(filepath.Join(sd, latestLink))
						if err != nil {
							b.Fatal(err)
						}
						if _, ok := readSnapshot(sd, name, time.UTC); !ok {
							b.Fatal("latest unreadable")
						}
						n++
					}
				}
				if n != machines*3 {
					b.Fatalf("got %d sources, want %d", n, machines*3)
				}
			}
		})
	}
}
