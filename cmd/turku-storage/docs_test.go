package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// TestGenMan: a page per command with its own title and section (8 for
// the daemon), the build's date, the sections an administrator looks
// for, no page for the PowerShell completion, and turku-storage.conf(5)
// from the configuration reference.
func TestGenMan(t *testing.T) {
	date := time.Date(2026, 12, 1, 0, 54, 0, 0, time.UTC)
	t.Setenv("SOURCE_DATE_EPOCH", fmt.Sprint(date.Unix()))
	dir := t.TempDir()
	if r := run(t, context.Background(), nil, "gen-man", "--configuration", filepath.Join("..", "..", "docs", "configuration.md"), dir); r.code != 0 {
		t.Fatalf("gen-man: exit %d: %s", r.code, r.stderr)
	}
	names := agenttest.DirNames(t, dir)
	for _, want := range []string{"turku-storage.8", "turku-storage-serve.8", "turku-storage-status.1", "turku-storage-check.1",
		"turku-storage-sources-run-now.1", "turku-storage-completion-bash.1", "turku-storage.conf.5"} {
		if !slices.Contains(names, want) {
			t.Errorf("no page %s among %v", want, names)
		}
	}
	for _, name := range names {
		if strings.Contains(name, "powershell") || strings.Contains(name, "gen-man") || name == "turku-storage.1" || name == "turku-storage-serve.1" {
			t.Errorf("page %s should not be there", name)
		}
	}

	th := regexp.MustCompile(`(?m)^\.TH "([^"]+)" "(\d)" "([^"]+)" "([^"]+)" "Turku backup"$`)
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range names {
		m := th.FindStringSubmatch(read(name))
		base, section := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)[1:]
		if m == nil || m[1] != strings.ToUpper(base) || m[2] != section || m[3] != "2026-12-01" || !strings.HasPrefix(m[4], "turku-storage ") {
			t.Errorf("%s: .TH %q, want %q section %s dated 2026-12-01", name, m, strings.ToUpper(base), section)
		}
	}

	for name, want := range map[string][]string{
		"turku-storage.8":       {".SH FILES", ".SH ENVIRONMENT", ".SH EXAMPLES", `\fBturku-storage-serve(8)\fP`, `\fBturku-storage-status(1)\fP`, "/usr/share/doc/turku\\-storage/"},
		"turku-storage-serve.8": {".SH EXIT STATUS", "JOURNAL_STREAM", "/run/turku\\-storage/control.sock", ".SH EXAMPLES", `\fBturku-storage(8)\fP`, `\fBturku-storage.conf\fP(5)`},
		"turku-storage-check.1": {".SH EXIT STATUS", "UNKNOWN: the configuration", ".SH FILES"},
		"turku-storage-logs.1":  {".SH EXIT STATUS", ".SH FILES", ".SH EXAMPLES", "turku\\-storage logs web1 etc \\-\\-failed"},
		"turku-storage.conf.5":  {".SH NAME\nturku-storage.conf \\- configuration", "\\fBssh_listen\\fR (default:", "max_concurrent_backups", ".SH SEE ALSO"},
	} {
		page := read(name)
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	if page := read("turku-storage.conf.5"); strings.Contains(page, "| key |") || strings.Contains(page, ".TS") {
		t.Errorf("turku-storage.conf.5 has the Markdown tables as tables, too wide for a terminal")
	}
}
