package backup

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxNameLen bounds names that become file names: a snapshot directory
// adds "_YYYYmmdd-HHMMSS_xxxx", its info file ".json" and a doomed one the
// "_delete-" prefix, and all of that must fit in NAME_MAX (255).
const maxNameLen = 200

// snapshotsSuffix names a source's snapshot directory next to its working
// tree (docs/protocol.md §6.2).
const snapshotsSuffix = ".snapshots"

// deletePrefix marks a snapshot directory that is being removed.
const deletePrefix = "_delete-"

// stampLayout is the time part of a snapshot name, in the configured zone.
const stampLayout = "20060102-150405"

// checkComponent returns an error if s cannot safely be used as a single
// path component of a file we create: it must not be empty, "." or "..",
// nor contain '/', NUL or other control characters.
func checkComponent(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", kind)
	case s == "." || s == "..":
		return fmt.Errorf("%s %q is not a usable file name", kind, s)
	case strings.ContainsRune(s, '/'):
		return fmt.Errorf("%s %q contains '/'", kind, s)
	case len(s) > maxNameLen:
		return fmt.Errorf("%s %.40q... is longer than %d bytes", kind, s, maxNameLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q contains a control character", kind, s)
		}
	}
	return nil
}

// checkSourceName returns an error if name cannot be a source: its working
// tree MACHINE_DIR/<name> must never collide with another source's
// MACHINE_DIR/<other>.snapshots.
func checkSourceName(name string) error {
	if err := checkComponent("source name", name); err != nil {
		return err
	}
	if strings.HasSuffix(name, snapshotsSuffix) {
		return fmt.Errorf("source name %q ends in %q", name, snapshotsSuffix)
	}
	return nil
}

// machineLinkName returns the VAR_DIR/machines name link for a machine:
// "<env>-<service>-<unit>", leaving out empty environment and service
// names like the old code did, with '/' turned into '_' (docs/protocol.md §6.1).
func machineLinkName(env, service, unit string) (string, error) {
	parts := []struct{ kind, v string }{
		{"environment name", env}, {"service name", service}, {"unit name", unit},
	}
	var out []string
	for _, p := range parts {
		v := strings.ReplaceAll(p.v, "/", "_")
		if v == "" && p.kind != "unit name" {
			continue
		}
		if err := checkComponent(p.kind, v); err != nil {
			return "", err
		}
		out = append(out, v)
	}
	name := strings.Join(out, "-")
	if err := checkComponent("machine name", name); err != nil {
		return "", err
	}
	return name, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsUUID reports whether s has the shape of a machine UUID.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// checkUsername returns an error if an rsync login cannot be put in an
// rsync:// URL unambiguously.
func checkUsername(u string) error {
	if u == "" {
		return errors.New("empty username")
	}
	if strings.ContainsAny(u, "@/:") {
		return fmt.Errorf("username %q contains '@', '/' or ':'", u)
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("username %q contains a space or control character", u)
		}
	}
	return nil
}

// snapshotName returns "<source>_<YYYYmmdd-HHMMSS>_<hex4>" for a snapshot
// that finished at t (already in the configured zone).
func snapshotName(source string, t time.Time, hex4 string) string {
	return source + "_" + t.Format(stampLayout) + "_" + hex4
}

var (
	ourNameRE = regexp.MustCompile(`_([0-9]{8}-[0-9]{6})_[0-9a-f]{4}$`)
	isoNameRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$`)
	epochRE   = regexp.MustCompile(`^[0-9]{1,11}(\.[0-9]{1,9})?$`)
)

// excludedName reports whether a directory in a source's snapshot
// directory is never a snapshot: one an operator set aside ("save" in its
// name) or an old "working" tree. The source prefix is ignored, so that a
// source called "saved" still gets snapshots.
func excludedName(dir, source string) bool {
	rest := strings.TrimPrefix(dir, source+"_")
	return strings.Contains(rest, "save") || strings.Contains(rest, "working")
}

// parseSnapshotName returns the time encoded in a snapshot directory name:
// ours ("etc_20261125-031500_ab12"), or the older Unix epoch float
// ("1424392089.43") and ISO ("2015-02-20T03:20:36[.ffffff]") forms.
// Zone-less times are in loc.
func parseSnapshotName(name string, loc *time.Location) (time.Time, bool) {
	if m := ourNameRE.FindStringSubmatch(name); m != nil {
		t, err := time.ParseInLocation(stampLayout, m[1], loc)
		return t, err == nil
	}
	if isoNameRE.MatchString(name) {
		t, err := time.ParseInLocation("2006-01-02T15:04:05", name, loc)
		return t, err == nil
	}
	if epochRE.MatchString(name) {
		sec, frac, _ := strings.Cut(name, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		var ns int64
		if frac != "" {
			frac = (frac + "000000000")[:9]
			ns, _ = strconv.ParseInt(frac, 10, 64)
		}
		return time.Unix(s, ns).In(loc), true
	}
	return time.Time{}, false
}

// isoTime formats t like Python's datetime.isoformat() on an aware
// datetime, which is what the old .json files hold:
// "2026-11-25T03:15:00.123456+01:00", without the fraction when it is 0.
func isoTime(t time.Time) string {
	t = t.Truncate(time.Microsecond)
	layout := "2006-01-02T15:04:05"
	if t.Nanosecond() != 0 {
		layout += ".000000"
	}
	return t.Format(layout + "-07:00")
}

// parseISOTime reads a time written by isoTime or by Python's
// isoformat(); a time without offset is in loc.
func parseISOTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04:05-07:00", "2006-01-02 15:04:05-07:00"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}
