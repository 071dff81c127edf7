package manpages

import (
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/config"
)

// TestConfPageFromSettings: turku-storage.conf(5) lists the keys as the
// settings table has them, with default and reload class, whatever the
// Markdown between the reference's markers says; the prose around them
// stays.
func TestConfPageFromSettings(t *testing.T) {
	md := "# Configuration reference\n\nSome prose.\n\n" + config.ReferenceBegin + "\n\n## Keys\n\n| key | default | meaning |\n|---|---|---|\n" +
		"| `stale_key` | `1` | a row left in the file |\n\n" + config.ReferenceEnd + "\n\n## Example\n\nMore prose.\n"
	page := string(Conf([]byte(md), Header{Date: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Source: "turku-storage 1.0"}))
	if strings.Contains(page, "stale_key") {
		t.Errorf("the page shows the Markdown's row of stale_key:\n%s", page)
	}
	for _, w := range []string{"Some prose.", ".SH EXAMPLE", "More prose."} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks the reference's %q", w)
		}
	}
	for _, tbl := range config.Reference() {
		for _, s := range tbl.Settings {
			for _, k := range s.Keys {
				if !strings.Contains(page, `\fB`+k+`\fR`) {
					t.Errorf("the page lacks the key %s", k)
				}
			}
		}
	}
	if !strings.Contains(page, `\fBssh_listen\fR (default: \fB:<ssh_ping_port>\fR; on reload: restart)`) {
		t.Errorf("the page does not give ssh_listen's default and reload class as the settings table does")
	}
}
