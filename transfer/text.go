package transfer

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// SendFile writes the stream (Send) under a temporary name beside path
// and puts it in place (atomicfile) once complete, mode 0600, so a failed
// send leaves no file that looks whole.
func SendFile(ctx context.Context, path string, opts SendOptions) (Sent, error) {
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return Sent{}, fmt.Errorf("-o %s: %w", path, err)
	}
	defer f.Cleanup()
	sent, err := Send(ctx, f, opts) // Send buffers its writes itself
	if err == nil {
		err = f.Commit()
	}
	if err != nil {
		return Sent{}, fmt.Errorf("-o %s: %w", path, err)
	}
	return sent, nil
}

// WriteText writes what `send` reports of s for a person.
func (s Sent) WriteText(w io.Writer) {
	st := s.Stats
	fmt.Fprintf(w, "sent machine %s%s: %d directories, %d files (%s), %d hard links, %d symlinks, %d devices; stream %s\n",
		s.Header.Machine, namesText(s.Header.Names), st.Dirs, st.Files, humanize.IBytes(uint64(st.Bytes)), st.HardLinks, st.Symlinks, st.Devices,
		humanize.IBytes(uint64(s.StreamBytes)))
	if st.Skipped > 0 {
		fmt.Fprintf(w, "left out: %d sockets (see the log)\n", st.Skipped)
	}
}

// WriteText writes what `receive` reports of r for a person.
func (r Received) WriteText(w io.Writer) {
	st := r.Stats
	storage := r.Header.Storage
	if storage == "" {
		storage = "-"
	}
	fmt.Fprintf(w, "received machine %s%s from %s into %s (volume %s): %d directories, %d files (%s), %d hard links, %d symlinks, %d devices\n",
		r.Header.Machine, namesText(r.Names), storage, r.Dir, r.Volume,
		st.Dirs, st.Files, humanize.IBytes(uint64(st.Bytes)), st.HardLinks, st.Symlinks, st.Devices)
	if st.Skipped > 0 {
		fmt.Fprintf(w, "not created: %d device files (not running as root)\n", st.Skipped)
	}
}

// namesText is " (a, b)" for a machine's name links, "" for none.
func namesText(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}
