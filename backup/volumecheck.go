package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// Volume states, as the volume check names them.
const (
	VolumeOK          = "ok"
	VolumeMissing     = "missing"
	VolumeNotDir      = "not a directory"
	VolumeNotMounted  = "not mounted"
	VolumeReadOnly    = "read-only"
	VolumeNotWritable = "not writable"
	// VolumeUnreadable is a volume whose state cannot be told: stat(2)
	// or statfs(2) failed for another reason than its absence.
	VolumeUnreadable = "unreadable"
)

// MarkerFile is written into a volume's root the first time the volume is
// seen healthy. Once VAR_DIR/volumes.json records that it was written, a
// volume without it is a mount point whose filesystem is not mounted.
const MarkerFile = ".turku-storage-volume"

// KnownVolumesFile, in VAR_DIR, lists the volumes this unit marked.
const KnownVolumesFile = "volumes.json"

// VolumeHealth is what the volume check found of one volume.
type VolumeHealth struct {
	Volume string
	Path   string
	// State is VolumeOK or what is wrong (VolumeMissing, …).
	State string
	// Detail says more when State is not VolumeOK (the system error,
	// the missing marker); it may be empty.
	Detail string
	// Marked is set when this check wrote the volume's marker;
	// MarkErr when writing it failed (the volume is still usable).
	Marked  bool
	MarkErr error
}

// OK reports whether the volume exists, is mounted and is writable.
func (h VolumeHealth) OK() bool { return h.State == VolumeOK }

// Err returns nil for a healthy volume, else a *VolumeError naming it.
func (h VolumeHealth) Err() error {
	if h.OK() {
		return nil
	}
	return &VolumeError{Volume: h.Volume, State: h.State, Detail: h.Detail}
}

// VolumeError is an unusable volume: missing, not mounted, read-only. Its
// text names the volume and what is wrong; the agent and the report
// summary get it. Cause, when set, is the failure the volume explains
// (rsync's, say), and its text follows.
type VolumeError struct {
	Volume string
	State  string
	Detail string
	Cause  error
}

func (e *VolumeError) Error() string {
	s := fmt.Sprintf("volume %s is %s", e.Volume, e.State)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

func (e *VolumeError) Unwrap() error { return e.Cause }

// knownMu serialises the read-modify-write of VAR_DIR/volumes.json within
// the process (concurrent sessions and the refresh loop all check).
var knownMu sync.Mutex

// knownVolumes is VAR_DIR/volumes.json: by volume path, when its marker
// was written.
type knownVolumes struct {
	Volumes map[string]knownVolume `json:"volumes"`
}

type knownVolume struct {
	Name   string    `json:"name"`
	Marked time.Time `json:"marked"`
}

type volumeMarker struct {
	Volume  string    `json:"volume"`
	Created time.Time `json:"created"`
}

func loadKnown(varDir string) (knownVolumes, error) {
	k := knownVolumes{Volumes: map[string]knownVolume{}}
	data, err := os.ReadFile(filepath.Join(varDir, KnownVolumesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal(data, &k); err != nil {
		return k, fmt.Errorf("%s: %w", filepath.Join(varDir, KnownVolumesFile), err)
	}
	if k.Volumes == nil {
		k.Volumes = map[string]knownVolume{}
	}
	return k, nil
}

// CheckVolumesLogged runs CheckVolumes and logs what it found: each
// marker written (INFO) or not written (WARN), and each volume that is
// unusable at ERROR, naming what is wrong. It returns the unusable ones.
func CheckVolumesLogged(log *slog.Logger, varDir string, vols []Volume, mark bool) []VolumeHealth {
	var bad []VolumeHealth
	for _, h := range CheckVolumes(varDir, vols, mark) {
		if h.Marked {
			log.Info("volume marked", "volume", h.Volume, "file", filepath.Join(h.Path, MarkerFile))
		}
		if h.MarkErr != nil {
			log.Warn("volume marker not written", "volume", h.Volume, "err", h.MarkErr)
		}
		if !h.OK() {
			log.Error("volume unusable", "volume", h.Volume, "state", h.State, "path", h.Path, "err", h.Err())
			bad = append(bad, h)
		}
	}
	return bad
}

// CheckVolumes checks every volume: it exists, is a directory, is on the
// filesystem it was on before (its marker is there, if this unit wrote
// one) and is writable. With mark, a healthy volume without a marker gets
// one and is recorded in VAR_DIR/volumes.json (a volume of the old layout
// is marked the first time it is seen healthy); without, nothing is
// written. A volumes.json that cannot be read counts every volume as
// never marked.
func CheckVolumes(varDir string, vols []Volume, mark bool) []VolumeHealth {
	knownMu.Lock()
	defer knownMu.Unlock()
	known, _ := loadKnown(varDir)
	out := make([]VolumeHealth, 0, len(vols))
	var record []int // indexes in out of the volumes newly recorded
	for _, v := range vols {
		h := checkVolume(v, known)
		_, recorded := known.Volumes[v.Path]
		if mark && h.OK() && (!h.hasMarker || !recorded) {
			// A marker found but not recorded (volumes.json could not
			// be written last time) is recorded now.
			if !h.hasMarker {
				h.MarkErr = writeMarker(v)
				h.Marked = h.MarkErr == nil
			}
			if h.MarkErr == nil {
				known.Volumes[v.Path] = knownVolume{Name: v.Name, Marked: time.Now().UTC()}
				record = append(record, len(out))
			}
		}
		out = append(out, h.VolumeHealth)
	}
	if len(record) > 0 {
		data, err := json.MarshalIndent(known, "", "  ")
		if err == nil {
			err = atomicfile.WriteFile(filepath.Join(varDir, KnownVolumesFile), append(data, '\n'), 0o600)
		}
		if err != nil {
			for _, i := range record {
				out[i].MarkErr = fmt.Errorf("record in %s: %w", KnownVolumesFile, err)
			}
		}
	}
	return out
}

type volumeCheck struct {
	VolumeHealth
	hasMarker bool
}

func checkVolume(v Volume, known knownVolumes) volumeCheck {
	h := volumeCheck{VolumeHealth: VolumeHealth{Volume: v.Name, Path: v.Path, State: VolumeOK}}
	set := func(state string, err error) volumeCheck {
		h.State = state
		if err != nil {
			h.Detail = err.Error()
		}
		return h
	}
	fi, err := os.Stat(v.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return set(VolumeMissing, err)
	case err != nil:
		return set(VolumeUnreadable, err)
	case !fi.IsDir():
		return set(VolumeNotDir, nil)
	}
	_, err = os.Lstat(filepath.Join(v.Path, MarkerFile))
	switch {
	case err == nil:
		h.hasMarker = true
	case !errors.Is(err, fs.ErrNotExist):
		return set(VolumeUnreadable, err)
	default:
		if _, ok := known.Volumes[v.Path]; ok {
			// The marker written earlier is gone: the mount point is
			// seen, not the filesystem that was mounted on it.
			h.State, h.Detail = VolumeNotMounted, "marker "+MarkerFile+" missing"
			return h
		}
	}
	var sf unix.Statfs_t
	if err := unix.Statfs(v.Path, &sf); err != nil {
		return set(VolumeUnreadable, &fs.PathError{Op: "statfs", Path: v.Path, Err: err})
	}
	if readOnlyFS(&sf) {
		return set(VolumeReadOnly, nil)
	}
	// access(2) answers EROFS even for root, and EACCES for a user who
	// may not write there.
	switch err := unix.Access(v.Path, unix.W_OK); {
	case errors.Is(err, unix.EROFS):
		return set(VolumeReadOnly, nil)
	case err != nil:
		return set(VolumeNotWritable, &fs.PathError{Op: "access", Path: v.Path, Err: err})
	}
	return h
}

// writeMarker creates v's marker; another process racing to write it is
// no error.
func writeMarker(v Volume) error {
	data, err := json.Marshal(volumeMarker{Volume: v.Name, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	err = atomicfile.WriteNew(filepath.Join(v.Path, MarkerFile), append(data, '\n'), 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}
