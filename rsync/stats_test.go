package rsync

import (
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var statsLineTests = []struct {
	name string
	line string
	want TransferStats
	ok   bool
}{
	{"files 3.1", "Number of files: 1,104 (reg: 1,101, dir: 2, link: 1)", TransferStats{Files: 1104}, true},
	{"files 3.0", "Number of files: 1104", TransferStats{Files: 1104}, true},
	{"created", "Number of created files: 1,103 (reg: 1,101, dir: 1, link: 1)", TransferStats{NewFiles: 1103}, true},
	{"created none", "Number of created files: 0", TransferStats{}, true},
	{"regular transferred", "Number of regular files transferred: 1,101", TransferStats{FilesTransferred: 1101}, true},
	{"transferred 3.0", "Number of files transferred: 7", TransferStats{FilesTransferred: 7}, true},
	{"total size", "Total file size: 2,004,396 bytes", TransferStats{TotalSize: 2004396}, true},
	{"total size 3.0", "Total file size: 2004396 bytes", TransferStats{TotalSize: 2004396}, true},
	{"total size dots", "Total file size: 2.004.396 bytes", TransferStats{TotalSize: 2004396}, true},
	{"transferred size", "Total transferred file size: 4 bytes", TransferStats{TransferredSize: 4}, true},
	{"received", "Total bytes received: 20,953", TransferStats{BytesReceived: 20953}, true},
	{"big", "Total file size: 9,223,372,036,854,775,807 bytes", TransferStats{TotalSize: 1<<63 - 1}, true},
	{"overflow", "Total file size: 92,233,720,368,547,758,070 bytes", TransferStats{}, true},
	{"not a number", "Total file size: lots bytes", TransferStats{}, true},
	{"negative", "Total file size: -5 bytes", TransferStats{}, true},
	{"empty number", "Number of files: ", TransferStats{}, true},
	{"deleted not read", "Number of deleted files: 3", TransferStats{}, false},
	{"sent not read", "Total bytes sent: 2,065,621", TransferStats{}, false},
	{"literal", "Literal data: 2,004,393 bytes", TransferStats{}, false},
	{"file name", "Number of files", TransferStats{}, false},
	{"empty", "", TransferStats{}, false},
}

func TestParseStatsLine(t *testing.T) {
	for _, tt := range statsLineTests {
		t.Run(tt.name, func(t *testing.T) {
			var got TransferStats
			if ok := parseStatsLine(tt.line, &got); ok != tt.ok {
				t.Errorf("parseStatsLine(%q) = %v, want %v", tt.line, ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseStatsLine(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func FuzzParseStatsLine(f *testing.F) {
	for _, tt := range statsLineTests {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var s TransferStats
		ok := parseStatsLine(line, &s)
		if !ok && s != (TransferStats{}) {
			t.Errorf("parseStatsLine(%q) filled %+v but reported no stats line", line, s)
		}
		for _, v := range []int64{s.Files, s.NewFiles, s.FilesTransferred, s.TotalSize, s.TransferredSize, s.BytesReceived} {
			if v < 0 {
				t.Errorf("parseStatsLine(%q) gave negative figure %+v", line, s)
			}
		}
	})
}

// TestOutputStats feeds a whole --stats run through the line reader:
// the figures are read and none of the block's lines counts as a file.
func TestOutputStats(t *testing.T) {
	out := `receiving incremental file list
./
hosts
sub/
sub/app.conf
Total of everything

Number of files: 1,234 (reg: 1,200, dir: 34)
Number of created files: 3 (reg: 3)
Number of deleted files: 0
Number of regular files transferred: 3
Total file size: 5,678,901 bytes
Total transferred file size: 4,096 bytes
Literal data: 4,096 bytes
Matched data: 0 bytes
File list size: 12,345
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 123
Total bytes received: 45,678

sent 123 bytes  received 45,678 bytes  91,602.00 bytes/sec
total size is 5,678,901  speedup is 124.00
`
	l := NewOutput(slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Odd-sized writes, as a pipe delivers them.
	for chunk := range pieces(out, 7) {
		if _, err := l.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	l.Flush()
	want := TransferStats{Files: 1234, NewFiles: 3, FilesTransferred: 3, TotalSize: 5678901, TransferredSize: 4096, BytesReceived: 45678}
	if diff := cmp.Diff(want, l.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got, want := l.Files(), int64(3); got != want {
		t.Errorf("file lines counted %d, want %d (hosts, sub/app.conf, Total of everything)", got, want)
	}
}

// pieces yields s in pieces of n bytes.
func pieces(s string, n int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}
