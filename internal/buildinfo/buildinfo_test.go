package buildinfo

import "testing"

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
