package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The live state reads the disk when asked: each volume's space (an error
// for one that cannot be examined) with its placement settings, and the
// reports spooled in VAR_DIR/reports (unreadable ones, renamed *.bad, not
// counted).
func TestStatusReadsDisk(t *testing.T) {
	vol := t.TempDir()
	gone := filepath.Join(vol, "missing")
	got := VolumeStatus(t.TempDir(), []Volume{
		{Name: "default", Path: vol, AcceptNew: true, HighWaterPct: 80, MaxUsagePct: 95},
		{Name: "gone", Path: gone},
	})
	if len(got) != 2 {
		t.Fatalf("volumes %+v", got)
	}
	if v := got[0]; v.SizeBytes <= 0 || v.FreeBytes <= 0 || v.SizeBytes < v.FreeBytes || v.Err != "" ||
		!v.AcceptNew || v.HighWaterPct != 80 || v.MaxUsagePct != 95 {
		t.Errorf("volume %+v, want its size, free space and settings", v)
	}
	if v := got[1]; v.Err == "" || !strings.Contains(v.Err, gone) || v.State != VolumeMissing || !strings.HasPrefix(v.Message, "volume gone is missing") {
		t.Errorf("missing volume %+v, want state missing and an error naming it", v)
	}
	if v := got[0]; v.State != VolumeOK || v.Message != "" || v.Inodes <= 0 || v.UsedBytes <= 0 {
		t.Errorf("volume %+v, want state ok, inodes and used bytes", v)
	}

	varDir := t.TempDir()
	reports := filepath.Join(varDir, "reports")
	if err := os.Mkdir(reports, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"00000000000000000001-ab.json", "00000000000000000002-cd.json", "x.json.bad"} {
		if err := os.WriteFile(filepath.Join(reports, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n := SpooledReports(varDir); n != 2 {
		t.Errorf("spooled reports %d, want 2 (the .bad file is not queued)", n)
	}
}
