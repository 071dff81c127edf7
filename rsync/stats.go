package rsync

import (
	"math"
	"strings"
)

// TransferStats are one rsync run's figures, from its --stats output.
// A zero field means rsync did not say (an older rsync, or a run that
// failed before its summary).
type TransferStats struct {
	// Files is the number of files (of every type) in the source.
	Files int64 `json:"files"`
	// NewFiles is the number of files created in the snapshot, not
	// linked from its base.
	NewFiles int64 `json:"new_files"`
	// FilesTransferred is the number of regular files whose data was sent.
	FilesTransferred int64 `json:"files_transferred"`
	// TotalSize is the size of every file in the source, in bytes.
	TotalSize int64 `json:"total_size"`
	// TransferredSize is the size of the files whose data was sent: the
	// data a link-dest snapshot adds to the volume.
	TransferredSize int64 `json:"transferred_size"`
	// BytesReceived is what came over the wire (compressed, with protocol
	// overhead).
	BytesReceived int64 `json:"bytes_received"`
}

// statsLines maps the --stats lines we read (rsync 3.1+ and 3.0 wording,
// from rsync's main.c output_summary) to the field each fills.
var statsLines = []struct {
	prefix string
	field  func(*TransferStats) *int64
}{
	{"Number of files: ", func(s *TransferStats) *int64 { return &s.Files }},
	{"Number of created files: ", func(s *TransferStats) *int64 { return &s.NewFiles }},
	{"Number of regular files transferred: ", func(s *TransferStats) *int64 { return &s.FilesTransferred }},
	{"Number of files transferred: ", func(s *TransferStats) *int64 { return &s.FilesTransferred }}, // 3.0
	{"Total file size: ", func(s *TransferStats) *int64 { return &s.TotalSize }},
	{"Total transferred file size: ", func(s *TransferStats) *int64 { return &s.TransferredSize }},
	{"Total bytes received: ", func(s *TransferStats) *int64 { return &s.BytesReceived }},
}

// parseStatsLine reads one line of rsync's --stats block into s and
// reports whether it was one of the lines we read. rsync 3.1+ groups
// digits with the locale's separator ("1,234"; rsync runs with no locale
// set, so a comma), 3.0 does not; any non-digit inside the number is taken
// for a separator. A line whose number cannot be read leaves s alone.
func parseStatsLine(line string, s *TransferStats) bool {
	for _, l := range statsLines {
		rest, ok := strings.CutPrefix(line, l.prefix)
		if !ok {
			continue
		}
		if n, ok := statsNumber(rest); ok {
			*l.field(s) = n
		}
		return true
	}
	return false
}

// statsNumber reads the number at the start of s, up to the first space
// ("1,234 (reg: …)", "5,678 bytes").
func statsNumber(s string) (int64, bool) {
	tok, _, _ := strings.Cut(s, " ")
	if tok == "" || tok[0] < '0' || tok[0] > '9' {
		return 0, false
	}
	var n int64
	for _, c := range []byte(tok) {
		switch {
		case c >= '0' && c <= '9':
			d := int64(c - '0')
			if n > (math.MaxInt64-d)/10 {
				return 0, false
			}
			n = n*10 + d
		case c == ',' || c == '.' || c == '\'':
		default:
			return 0, false
		}
	}
	return n, true
}
