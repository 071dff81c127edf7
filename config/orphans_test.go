package config

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOrphanSettings(t *testing.T) {
	const base = `"name": "s", "secret": "x", "api_url": "https://api.example.com/v1", "volumes": {"v": {"path": "/srv/v"}}, "var_dir": "/var/lib/t"`
	tests := []struct {
		name, extra  string
		warn, expiry time.Duration
		wantProblem  string
	}{
		{"defaults: warn after 14 days, never purged", ``, 14 * 24 * time.Hour, 0, ""},
		{"days", `, "orphan_warn_after": "3d", "orphan_expiry": "90d"`, 3 * 24 * time.Hour, 90 * 24 * time.Hour, ""},
		{"go duration", `, "orphan_expiry": "720h"`, 14 * 24 * time.Hour, 720 * time.Hour, ""},
		{"expiry under a day", `, "orphan_expiry": "2h"`, 0, 0,
			`config.d/a.json: orphan_expiry: 2h0m0s is less than a day: a machine moved back and forth would lose its backups`},
		{"bad days", `, "orphan_warn_after": "xd"`, 0, 0,
			`config.d/a.json: orphan_warn_after: want a number of days like "14d" (1..36500) or a duration like "336h", got "xd"`},
		{"zero expiry", `, "orphan_expiry": "0d"`, 0, 0,
			`config.d/a.json: orphan_expiry: want a number of days like "14d" (1..36500) or a duration like "336h", got "0d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, map[string]string{"a.json": `{` + base + tt.extra + `}`}))
			if tt.wantProblem != "" {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("got %v, want a *config.Error", err)
				}
				if diff := cmp.Diff([]string{tt.wantProblem}, ce.Problems); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.OrphanWarnAfter != tt.warn || c.OrphanExpiry != tt.expiry {
				t.Errorf("got warn %v expiry %v, want %v %v", c.OrphanWarnAfter, c.OrphanExpiry, tt.warn, tt.expiry)
			}
		})
	}
}
