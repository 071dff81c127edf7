package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/turku-backup/turku-storage/internal/words"
)

// Info is what `version` reports about the binary.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	BuildDate string `json:"build_date,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// Read is the build's Info: version, commit and buildDate as the linker
// set them, else the build info's module version and VCS stamp.
func Read(version, commit, buildDate string) Info {
	b := Info{Version: version, Commit: commit, BuildDate: buildDate,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok && b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				// The commit's time: the closest a reproducible build has
				// to a build date.
				if b.BuildDate == "" {
					b.BuildDate = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b
}

// Short is the short version: the release, or devel-COMMIT.
func (b Info) Short() string {
	if b.Version != "" {
		return b.Version
	}
	if b.Commit == "" {
		return "devel"
	}
	rev := b.Commit
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if b.Modified {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// WriteText writes b as `version` prints it for a person, as the build of
// program: its version, then the commit, build date and Go.
func (b Info) WriteText(w io.Writer, program string) {
	fmt.Fprintf(w, "%s %s\n", program, b.Version)
	commit := words.Dash(b.Commit)
	if b.Modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "  commit:  %s\n  built:   %s\n  go:      %s %s\n", commit, words.Dash(b.BuildDate), b.GoVersion, b.Platform)
}
