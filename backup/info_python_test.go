package backup

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/rsync"
)

// TestInfoReadByOldCode has python3 read a new .json the way the old
// storage unit's code does (json.load, then its four keys) and write it
// back with the old code's json.dump settings: the keys it reads are
// unchanged, and the file is byte for byte what Python would write.
func TestInfoReadByOldCode(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	t.Parallel()
	begin := time.Date(2026, 11, 25, 3, 15, 0, 123456000, time.UTC)
	finish := time.Date(2026, 11, 25, 3, 16, 0, 0, time.UTC)
	stats := &rsync.TransferStats{Files: 1234, NewFiles: 3, FilesTransferred: 2, TotalSize: 5678901, TransferredSize: 4096, BytesReceived: 45678}
	path := filepath.Join(t.TempDir(), "etc_20261125-031600_ab12.json")
	data := encodeInfo("etc_20261125-031600_ab12", "etc_20261124-031600_cd34", begin, finish, stats)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import json, sys
with open(sys.argv[1]) as f:
    j = json.load(f)
for k in ("base", "name", "sync_begin", "sync_finish"):
    print("%s=%s" % (k, j[k]))
sys.stdout.write(json.dumps(j, sort_keys=True, indent=4, separators=(",", ": ")))
`
	cmd := exec.Command(python, "-c", script, path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	want := "base=etc_20261124-031600_cd34\nname=etc_20261125-031600_ab12\n" +
		"sync_begin=2026-11-25T03:15:00.123456+00:00\nsync_finish=2026-11-25T03:16:00+00:00\n" + string(data)
	if got := string(out); got != want {
		t.Errorf("python3 read\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(string(data), `"transferred_size": 4096`) {
		t.Errorf(".json lacks the transfer's figures:\n%s", data)
	}
}
