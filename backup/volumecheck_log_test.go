package backup

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckVolumesLogged: a marker written is logged at INFO, an unusable
// volume at ERROR with what is wrong, and only the unusable ones return.
func TestCheckVolumesLogged(t *testing.T) {
	root := t.TempDir()
	varDir, ok := filepath.Join(root, "var"), filepath.Join(root, "ok")
	for _, d := range []string{varDir, ok} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bad := CheckVolumesLogged(log, varDir, []Volume{{Name: "ok", Path: ok}, {Name: "gone", Path: filepath.Join(root, "gone")}}, true)
	if len(bad) != 1 || bad[0].Volume != "gone" || bad[0].State != VolumeMissing {
		t.Errorf("unusable %+v, want gone alone", bad)
	}
	for _, want := range []string{
		`level=INFO msg="volume marked" volume=ok file=` + filepath.Join(ok, MarkerFile),
		`level=ERROR msg="volume unusable" volume=gone state=missing path=` + filepath.Join(root, "gone"),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}
