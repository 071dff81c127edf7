package history

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// latestSuffix names a machine's newest records, next to its .jsonl:
// each source's newest record as of the .jsonl's size and modification
// time it records. Latest reads it instead of the whole .jsonl (which
// compaction lets grow to compactAbove) when the .jsonl still has that
// size and time; a crash between the append and it, or a .jsonl changed
// otherwise, only makes Latest read the .jsonl.
const latestSuffix = ".latest.json"

// latestFile is a machine's latestSuffix file.
type latestFile struct {
	Size    int64              `json:"jsonl_size"`
	ModTime int64              `json:"jsonl_mtime_ns"`
	Sources map[string]Attempt `json:"sources"`
}

// writeLatest records last as the newest records of the .jsonl at path,
// as it is now. It is a cache: written without syncing, its failure
// only costs the next Latest a read of the .jsonl, so it is not
// returned.
func writeLatest(path string, last map[string]Attempt) {
	lpath := strings.TrimSuffix(path, ".jsonl") + latestSuffix
	fi, err := os.Stat(path)
	if err != nil {
		os.Remove(lpath)
		return
	}
	data, err := json.Marshal(latestFile{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Sources: last})
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(lpath)+"-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Chmod(tmp.Name(), fileMode) != nil || os.Rename(tmp.Name(), lpath) != nil {
		os.Remove(tmp.Name())
	}
}

// readLatest returns the newest record of each source of the .jsonl at
// path: from its latestSuffix file when that matches the .jsonl's size
// and modification time, else from the .jsonl itself.
func readLatest(path string) (map[string]Attempt, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		var lf latestFile
		data, err := os.ReadFile(strings.TrimSuffix(path, ".jsonl") + latestSuffix)
		if err == nil && json.Unmarshal(data, &lf) == nil && lf.Size == fi.Size() && lf.ModTime == fi.ModTime().UnixNano() && lf.Sources != nil {
			return lf.Sources, nil
		}
	}
	recs, err := readFile(path)
	if len(recs) == 0 {
		return nil, err
	}
	return newest(recs), err
}
