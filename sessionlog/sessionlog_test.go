package sessionlog

import (
	"strings"
	"testing"
	"time"
)

func TestLogger(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Date(2026, 11, 25, 3, 15, 0, 123456789, time.UTC) }
	tests := []struct {
		name    string
		verbose bool
		want    string
	}{
		{
			name:    "verbose",
			verbose: true,
			want: "[2026-11-25 03:15:00,123 primary] INFO: Begin: web1 etc\n" +
				"[2026-11-25 03:15:00,123 primary] WARNING: slow\n" +
				"[2026-11-25 03:15:00,123 primary] ERROR: bad\\nINFO: fake\n",
		},
		{
			name: "quiet",
			want: "[2026-11-25 03:15:00,123 primary] ERROR: bad\\nINFO: fake\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			l := New(&b, "primary", tt.verbose, now)
			l.Infof("Begin: %s %s", "web1", "etc")
			l.Warningf("slow")
			l.Errorf("bad\nINFO: fake")
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRestoreLines: the restore lines are the old storage unit's, word
// for word (two spaces before "Good luck."), at INFO.
func TestRestoreLines(t *testing.T) {
	var b strings.Builder
	l := New(&b, "primary", true, func() time.Time { return time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC) })
	l.RestoreActive(50123)
	l.RestoreFinished()
	want := "[2026-11-25 03:15:00,000 primary] INFO: Restore mode active on port 50123.  Good luck.\n" +
		"[2026-11-25 03:15:00,000 primary] INFO: Restore mode finished\n"
	if got := b.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
