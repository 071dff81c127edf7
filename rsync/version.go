package rsync

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Version is an rsync release number as `rsync --version` prints it:
// 3.4.1, or a pre-release such as 3.4.0pre1.
type Version struct {
	Major, Minor, Patch int
	// Pre is what follows the numbers ("pre1", "dev"); a version with Pre
	// comes before the same numbers without.
	Pre string
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d%s", v.Major, v.Minor, v.Patch, v.Pre)
}

// less reports whether v is an earlier release than w.
func (v Version) less(w Version) bool {
	switch {
	case v.Major != w.Major:
		return v.Major < w.Major
	case v.Minor != w.Minor:
		return v.Minor < w.Minor
	case v.Patch != w.Patch:
		return v.Patch < w.Patch
	case (v.Pre == "") != (w.Pre == ""):
		return v.Pre != ""
	}
	return v.Pre < w.Pre
}

// Fix is an rsync security fix that matters to the storage unit,
// which runs rsync as root as the client of a daemon the agent controls
// (see docs/operations.md, "Local security", and rsync's NEWS.md).
type Fix struct {
	CVE   string
	Fixed Version // first release with the fix
	What  string
}

// clientFixes are the fixes of 2024-2026 for what a malicious rsync
// daemon (the sender) can do to a pulling client run with the storage
// unit's options (--archive --compress --delete --link-dest=ABSOLUTE,
// optionally --hard-links or --inplace), in release order. Server-side
// fixes, and client-side ones for options we never pass (--safe-links,
// --xattrs, RSYNC_PROXY), are left out.
var clientFixes = []Fix{
	{"CVE-2024-12086", Version{3, 4, 0, ""}, "the daemon can read arbitrary files of the client"},
	{"CVE-2024-12087", Version{3, 4, 0, ""}, "the daemon can make the client write outside the destination through symlinks"},
	{"CVE-2026-43618", Version{3, 4, 3, ""}, "the daemon can read the client's memory through the compressed-token decoder (--compress)"},
	{"CVE-2026-43620", Version{3, 4, 3, ""}, "the daemon can crash the client"},
	{"CVE-2026-53789", Version{3, 5, 0, ""}, "the daemon can widen --delete to directories outside the transfer"},
	{"CVE-2026-53795", Version{3, 5, 0, ""}, "an absolute --link-dest disables the receiver's rename confinement, so a file can be written outside the destination"},
	{"CVE-2026-70458", Version{3, 5, 0, ""}, "a hard-link flag the daemon sets without -H makes the client write out of bounds"},
	{"CVE-2026-70462", Version{3, 5, 0, ""}, "the daemon can disable the client's I/O timeout"},
}

// FixedVersion is the first rsync release with every fix in
// MissingFixes' list.
const FixedVersion = "3.5.0"

// MissingFixes returns the client-side security fixes released after v.
// Distributions backport fixes without changing the version, so this is a
// reason to check, not proof of a hole.
func (v Version) MissingFixes() []Fix {
	var out []Fix
	for _, f := range clientFixes {
		if v.less(f.Fixed) {
			out = append(out, f)
		}
	}
	return out
}

// ParseVersion reads the release from `rsync --version` output: the
// first line of the form "rsync  version [v]X.Y[.Z][SUFFIX]  protocol
// version N". openrsync, a different implementation whose fixes these are
// not, is refused.
func ParseVersion(out string) (Version, error) {
	v, _, err := parseVersionOutput(out)
	return v, err
}

// parseVersionOutput is ParseVersion that also returns the protocol
// version the line names (0 if it names none).
func parseVersionOutput(out string) (Version, int, error) {
	if strings.Contains(out, "openrsync") {
		return Version{}, 0, errors.New("openrsync is not rsync: its security fixes are not tracked here")
	}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "rsync" && f[i+1] == "version" {
				if v, ok := parseRelease(f[i+2]); ok {
					protocol := 0
					if i+5 < len(f) && f[i+3] == "protocol" && f[i+4] == "version" {
						protocol, _ = strconv.Atoi(f[i+5])
					}
					return v, protocol, nil
				}
			}
		}
	}
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	return Version{}, 0, fmt.Errorf("no rsync version in %.80q", first)
}

// parseRelease parses "3.4.1", "v3.2.7", "3.1" or "3.4.0pre1".
func parseRelease(s string) (Version, bool) {
	s = strings.TrimPrefix(s, "v")
	var nums [3]int
	n := 0
	for n < 3 {
		end := 0
		for end < len(s) && end < 5 && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == 0 || end > 4 {
			return Version{}, false
		}
		nums[n], _ = strconv.Atoi(s[:end])
		s = s[end:]
		n++
		if n == 3 || !strings.HasPrefix(s, ".") || len(s) < 2 || s[1] < '0' || s[1] > '9' {
			break
		}
		s = s[1:]
	}
	if n < 2 || len(s) > 32 {
		return Version{}, false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter || !letter && (r < '0' || r > '9') && !strings.ContainsRune(".+~-_", r) {
			return Version{}, false
		}
	}
	return Version{nums[0], nums[1], nums[2], s}, true
}

// Binary is an rsync client found on this system.
type Binary struct {
	// Command is what was asked for (rsync_command), Path what it
	// resolved to.
	Command, Path string
	Version       Version
	// Protocol is the protocol version rsync --version names.
	Protocol int
}

// Find looks command up in PATH, runs `command --version` and returns the
// release it reports. On an error the Binary holds what was found so far
// (Command, and Path once it was looked up).
func Find(ctx context.Context, command string) (Binary, error) {
	b := Binary{Command: command}
	path, err := exec.LookPath(command)
	if err != nil {
		return b, err
	}
	b.Path = path
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		return b, fmt.Errorf("%s --version: %w", path, err)
	}
	if b.Version, b.Protocol, err = parseVersionOutput(string(out)); err != nil {
		return b, fmt.Errorf("%s --version: %w", path, err)
	}
	return b, nil
}

// Info is the rsync binary a command would run, as `version` reports it.
type Info struct {
	Command  string `json:"command"`
	Path     string `json:"path,omitempty"`
	Version  string `json:"version,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Describe finds command (Find) and says what it found, or why not.
func Describe(ctx context.Context, command string) Info {
	b, err := Find(ctx, command)
	r := Info{Command: command, Path: b.Path}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Version = b.Version.String()
	if b.Protocol > 0 {
		r.Protocol = strconv.Itoa(b.Protocol)
	}
	return r
}

// String is i for a person: "PATH, version V, protocol P", or
// "COMMAND: ERROR".
func (i Info) String() string {
	if i.Error != "" {
		return i.Command + ": " + i.Error
	}
	return fmt.Sprintf("%s, version %s, protocol %s", i.Path, i.Version, i.Protocol)
}
