package transfer

import (
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	const uuid = "3c8a1d5e-0f6b-4a2c-9d7e-1b2c3d4e5f60"
	st := Stats{Dirs: 3, Files: 4, Bytes: 1536, HardLinks: 2, Symlinks: 1, Devices: 0}
	for _, tt := range []struct {
		name string
		text func(*strings.Builder)
		want string
	}{
		{"sent", func(b *strings.Builder) {
			Sent{Header: Header{Machine: uuid, Names: []string{"prod-www-web1", "web1"}}, Stats: st, StreamBytes: 10 << 10}.WriteText(b)
		}, "sent machine " + uuid + " (prod-www-web1, web1): 3 directories, 4 files (1.5 KiB), 2 hard links, 1 symlinks, 0 devices; stream 10 KiB\n"},
		{"sent, sockets left out", func(b *strings.Builder) {
			s := st
			s.Skipped = 2
			Sent{Header: Header{Machine: uuid}, Stats: s}.WriteText(b)
		}, "sent machine " + uuid + ": 3 directories, 4 files (1.5 KiB), 2 hard links, 1 symlinks, 0 devices; stream 0 B\nleft out: 2 sockets (see the log)\n"},
		{"received", func(b *strings.Builder) {
			Received{Header: Header{Machine: uuid}, Dir: "/srv/turku/" + uuid, Volume: "default", Names: []string{"web1"}, Stats: st}.WriteText(b)
		}, "received machine " + uuid + " (web1) from - into /srv/turku/" + uuid + " (volume default): 3 directories, 4 files (1.5 KiB), 2 hard links, 1 symlinks, 0 devices\n"},
	} {
		var b strings.Builder
		tt.text(&b)
		if b.String() != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, b.String(), tt.want)
		}
	}
}
