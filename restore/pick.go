package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/backup"
)

// dateLayouts are the forms SNAPSHOT may take as a date, in the configured
// time zone.
var dateLayouts = []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// Pick chooses among snaps (oldest first) by want: "" or "latest",
// a snapshot name, or a date/time meaning the last snapshot finished
// before it.
func Pick(snaps []backup.Snapshot, source, want string, loc *time.Location) (backup.Snapshot, error) {
	if len(snaps) == 0 {
		return backup.Snapshot{}, fmt.Errorf("source %s has no snapshots", source)
	}
	if want == "" || want == "latest" {
		for _, s := range snaps {
			if s.Latest {
				return s, nil
			}
		}
		return snaps[len(snaps)-1], nil
	}
	for _, s := range snaps {
		if s.Name == want || filepath.Base(s.Path) == want {
			return s, nil
		}
	}
	var before time.Time
	var err error
	if before, err = time.Parse(time.RFC3339, want); err != nil {
		for _, layout := range dateLayouts {
			if before, err = time.ParseInLocation(layout, want, loc); err == nil {
				break
			}
		}
	}
	if err != nil {
		return backup.Snapshot{}, fmt.Errorf("source %s: no snapshot named %q, and it is not a date (like 2026-11-20 or 2026-11-20T15:04); the newest is %s", source, want, snaps[len(snaps)-1].Name)
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		if snaps[i].SyncFinish.Before(before) {
			return snaps[i], nil
		}
	}
	return backup.Snapshot{}, fmt.Errorf("source %s: no snapshot before %s; the oldest is %s, finished %s",
		source, before.In(loc).Format(time.RFC3339), snaps[0].Name, snaps[0].SyncFinish.In(loc).Format(time.RFC3339))
}

// Source is what rsync sends: the whole snapshot, or one path in it.
type Source struct {
	// Arg is rsync's source argument.
	Arg string
	// Relative is set for a subpath: "SNAP/./SUB" with --relative
	// recreates SUB under the agent's restore module.
	Relative bool
}

// Subpath checks sub inside the snapshot directory snap. The path
// may not leave the snapshot: ".." is refused, and so is any symlink on
// the way to it, since the snapshot holds the agent's files and a link
// there (data -> /etc) would otherwise make rsync send the storage unit's
// own files. A symlink as the last component is sent as a link.
func Subpath(snap, sub string) (Source, error) {
	if strings.Contains(sub, "\x00") {
		return Source{}, fmt.Errorf("--path %q: contains NUL", sub)
	}
	for _, part := range strings.Split(filepath.ToSlash(sub), "/") {
		if part == ".." {
			return Source{}, fmt.Errorf("--path %q: \"..\" would leave the snapshot", sub)
		}
	}
	// A leading "/" means the snapshot's root, the source's path.
	clean := filepath.Clean("/" + sub)[1:]
	if clean == "" {
		return Source{Arg: snap + "/"}, nil
	}
	parts := strings.Split(clean, "/")
	cur := snap
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return Source{}, fmt.Errorf("--path %q: %s does not exist in the snapshot", sub, strings.Join(parts[:i+1], "/"))
		}
		if err != nil {
			return Source{}, fmt.Errorf("--path %q: %w", sub, err)
		}
		last := i == len(parts)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0 && !last:
			return Source{}, fmt.Errorf("--path %q: %s is a symbolic link in the snapshot; give the path it points to", sub, strings.Join(parts[:i+1], "/"))
		case !last && !fi.IsDir():
			return Source{}, fmt.Errorf("--path %q: %s is not a directory", sub, strings.Join(parts[:i+1], "/"))
		case last && fi.IsDir():
			return Source{Arg: snap + "/./" + clean + "/", Relative: true}, nil
		}
	}
	return Source{Arg: snap + "/./" + clean, Relative: true}, nil
}
