package buildinfo

import (
	"strings"
	"testing"
)

func TestShort(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   Info
		want string
	}{
		{"release", Info{Version: "1.2.3", Commit: "0123456789abcdef"}, "1.2.3"},
		{"commit", Info{Commit: "0123456789abcdef"}, "devel-0123456789ab"},
		{"modified", Info{Commit: "0123456789abcdef", Modified: true}, "devel-0123456789ab-dirty"},
		{"nothing", Info{}, "devel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Short(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The linker's values win over what go build recorded.
func TestReadLinkerValues(t *testing.T) {
	b := Read("9.9.9", "feedface", "2026-12-06")
	if b.Version != "9.9.9" || b.Commit != "feedface" || b.BuildDate != "2026-12-06" || b.GoVersion == "" || b.Platform == "" {
		t.Errorf("got %+v", b)
	}
}

func TestWriteText(t *testing.T) {
	for _, tt := range []struct {
		name string
		info Info
		want string
	}{
		{"release", Info{Version: "1.2.0", Commit: "abc", BuildDate: "2026-12-01", GoVersion: "go1.26", Platform: "linux/amd64"},
			"t 1.2.0\n  commit:  abc\n  built:   2026-12-01\n  go:      go1.26 linux/amd64\n"},
		{"modified, no date", Info{Version: "devel-abc", Commit: "abc", Modified: true, GoVersion: "go1.26", Platform: "linux/arm64"},
			"t devel-abc\n  commit:  abc (modified)\n  built:   -\n  go:      go1.26 linux/arm64\n"},
	} {
		var b strings.Builder
		tt.info.WriteText(&b, "t")
		if b.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, b.String(), tt.want)
		}
	}
}
