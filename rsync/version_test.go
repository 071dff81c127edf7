package rsync

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

var versionTests = []struct {
	name string
	out  string
	want Version
	err  string
}{
	{name: "3.5.0", out: "rsync  version 3.5.0  protocol version 32\nCopyright (C) 1996-2026 by Andrew Tridgell, Wayne Davison, and others.\n",
		want: Version{3, 5, 0, ""}},
	{name: "v prefix", out: "rsync  version v3.2.7  protocol version 31\n", want: Version{3, 2, 7, ""}},
	{name: "two parts", out: "rsync version 3.1  protocol version 31\n", want: Version{3, 1, 0, ""}},
	{name: "pre-release", out: "rsync  version 3.4.0pre1  protocol version 32\n", want: Version{3, 4, 0, "pre1"}},
	{name: "dev", out: "rsync  version 3.4.2dev  protocol version 32\n", want: Version{3, 4, 2, "dev"}},
	{name: "old 2.6.9", out: "rsync  version 2.6.9  protocol version 29\nCopyright (C) 1996-2006 by Andrew Tridgell, Wayne Davison, and others.\n",
		want: Version{2, 6, 9, ""}},
	{name: "CRLF and leading blank line", out: "\r\nrsync  version 3.4.1  protocol version 32\r\n", want: Version{3, 4, 1, ""}},
	{name: "openrsync", out: "openrsync: protocol version 29\nrsync version 2.6.9 compatible\n", err: "openrsync"},
	{name: "empty", out: "", err: "no rsync version"},
	{name: "garbage", out: "bash: rsync: command not found\n", err: "no rsync version"},
	{name: "huge number", out: "rsync  version 3.99999999999999999999.0  protocol version 32\n", err: "no rsync version"},
	{name: "version later in the text only", out: "Usage: rsync\nrsync  version 3.4.1  protocol version 32\n", want: Version{3, 4, 1, ""}},
}

func TestParseVersion(t *testing.T) {
	for _, tt := range versionTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersion(tt.out)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMissingFixes(t *testing.T) {
	tests := []struct {
		version string
		want    []string // CVEs
	}{
		{"3.5.0", nil},
		{"3.5.1", nil},
		{"4.0.0", nil},
		{"3.5.0pre2", []string{"CVE-2026-53789", "CVE-2026-53795", "CVE-2026-70458", "CVE-2026-70462"}},
		{"3.4.3", []string{"CVE-2026-53789", "CVE-2026-53795", "CVE-2026-70458", "CVE-2026-70462"}},
		{"3.4.1", []string{"CVE-2026-43618", "CVE-2026-43620", "CVE-2026-53789", "CVE-2026-53795", "CVE-2026-70458", "CVE-2026-70462"}},
		{"3.2.7", []string{"CVE-2024-12086", "CVE-2024-12087", "CVE-2026-43618", "CVE-2026-43620", "CVE-2026-53789", "CVE-2026-53795", "CVE-2026-70458", "CVE-2026-70462"}},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			v, err := ParseVersion("rsync  version " + tt.version + "  protocol version 31\n")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range v.MissingFixes() {
				got = append(got, f.CVE)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestFind runs a stand-in rsync that claims an old release, one that
// fails, one that is missing, and the real one.
func TestFind(t *testing.T) {
	old := agenttest.Script(t, `echo "rsync  version 3.2.7  protocol version 31"`)
	b, err := Find(t.Context(), old)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version.String() != "3.2.7" || b.Protocol != 31 || b.Path != old || len(b.Version.MissingFixes()) == 0 || FixedVersion != "3.5.0" {
		t.Errorf("got %+v missing %v, fixed %s", b, b.Version.MissingFixes(), FixedVersion)
	}
	if _, err := Find(t.Context(), agenttest.Script(t, "exit 3")); err == nil {
		t.Error("a failing rsync --version gave no error")
	}
	missing := filepath.Join(t.TempDir(), "rsync")
	if b, err := Find(t.Context(), missing); err == nil || b.Command != missing || b.Path != "" {
		t.Errorf("missing binary: got %+v, %v; want an error and no path", b, err)
	}
	// The real one parses, whatever its release.
	if b, err := Find(t.Context(), "rsync"); err != nil || b.Protocol == 0 {
		t.Errorf("system rsync: %+v, %v", b, err)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, tt := range versionTests {
		f.Add(tt.out)
	}
	f.Fuzz(func(t *testing.T, out string) {
		v, err := ParseVersion(out)
		if err != nil {
			return
		}
		// A parsed version prints back to what parses to the same.
		again, err := ParseVersion(fmt.Sprintf("rsync  version %s  protocol version 31\n", v))
		if err != nil {
			t.Fatalf("%q parsed to %v, which does not parse: %v", out, v, err)
		}
		if again != v {
			t.Fatalf("%q parsed to %#v, printed and parsed again %#v", out, v, again)
		}
		_ = v.MissingFixes()
	})
}

func TestInfoString(t *testing.T) {
	for _, tt := range []struct {
		info Info
		want string
	}{
		{Info{Command: "rsync", Path: "/usr/bin/rsync", Version: "3.4.1", Protocol: "32"}, "/usr/bin/rsync, version 3.4.1, protocol 32"},
		{Info{Command: "/nonexistent/rsync", Error: "not found"}, "/nonexistent/rsync: not found"},
	} {
		if got := tt.info.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := Describe(context.Background(), "/nonexistent/rsync"); got.Error == "" || got.Path != "" || got.Command != "/nonexistent/rsync" {
		t.Errorf("Describe of a missing binary: %+v", got)
	}
}
