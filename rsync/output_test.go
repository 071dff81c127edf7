package rsync

import "testing"

func TestIsFileLine(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"hosts", true},
		{"sub/app.conf", true},
		{"link -> target", true},
		{"file with spaces.txt", true},
		{"./", false},
		{"sub/", false},
		{"", false},
		{"receiving incremental file list", false},
		{"created directory /vol/m/etc", false},
		{"deleting old.conf", false},
		{"sent 1,234 bytes  received 5,678 bytes  2,304.00 bytes/sec", false},
		{"total size is 3,145,728  speedup is 1.00", false},
		{"rsync: [Receiver] write failed on \"x\": No space left on device (28)", false},
		{"rsync error: error in file IO (code 11) at receiver.c(381)", false},
		{"@ERROR: auth failed on module etc", false},
		{"file has vanished: \"/etc/x\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := isFileLine(tt.line); got != tt.want {
				t.Errorf("isFileLine(%q) = %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}
