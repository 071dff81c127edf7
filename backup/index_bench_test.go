package backup

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/turku-backup/turku-storage/history"
)

// benchSummaries times Summaries on varDir, with an index written first
// and, before each listing (untimed), passed through prepare.
func benchSummaries(b *testing.B, varDir string, machines int, prepare func(b *testing.B, idx []byte) []byte) {
	path := filepath.Join(varDir, history.DirName, IndexFile)
	if _, err := Summaries(b.Context(), varDir, IndexOptions{Rescan: true}); err != nil {
		b.Fatal(err)
	}
	base, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if prepare != nil {
			b.StopTimer()
			if err := os.WriteFile(path, prepare(b, base), 0o640); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		ms, err := Summaries(b.Context(), varDir, IndexOptions{})
		if err != nil || len(ms) != machines {
			b.Fatalf("got %d machines, %v", len(ms), err)
		}
	}
}

// staleIndex is the index idx with every snapshot directory's stamp
// changed, its snapshots still known.
func staleIndex(b *testing.B, idx []byte) []byte {
	x, err := decodeIndex(idx)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range x.Machines {
		for _, s := range m.Sources {
			s.Stamp = dirStamp{}
		}
	}
	return x.encode()
}
