package transfer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

const testUUID = "9bef0a75-5a9b-43f7-a66a-7e8c6d7ad91d"

// unit is a storage unit's VAR_DIR and one volume.
type unit struct {
	varDir, volume string
	m              *backup.Machines
}

func newUnit(t testing.TB) *unit {
	t.Helper()
	root := t.TempDir()
	u := &unit{varDir: filepath.Join(root, "var"), volume: filepath.Join(root, "volume")}
	if err := os.MkdirAll(u.volume, 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := backup.NewMachines(backup.Options{VarDir: u.varDir, Volumes: []backup.Volume{{Name: "v", Path: u.volume, AcceptNew: true, HighWaterPct: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	u.m = m
	return u
}

func (u *unit) machineDir() string { return filepath.Join(u.varDir, "machines", testUUID) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, path, data string, mtime time.Time) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	must(t, os.WriteFile(path, []byte(data), 0o640))
	must(t, os.Chtimes(path, mtime, mtime))
}

// addMachine lays out a machine as three link-dest backups leave it: in
// each snapshot "same" and "sub/deep" are the first snapshot's inodes,
// "changes" is new, "x" and "y" are one file (preserve_hard_links), plus
// a symlink, a fifo and (as root) a device; the .json files, latest and
// a name link.
func addMachine(t testing.TB, u *unit) string {
	t.Helper()
	dir := filepath.Join(u.volume, testUUID)
	must(t, os.MkdirAll(filepath.Join(u.varDir, "machines"), 0o700))
	must(t, os.Symlink(dir, u.machineDir()))
	must(t, os.Symlink(testUUID, filepath.Join(u.varDir, "machines", "prod-web-web1")))
	snaps := filepath.Join(dir, "etc.snapshots")
	mt := time.Date(2026, 11, 1, 3, 4, 5, 123456789, time.UTC)
	var prev string
	for i, name := range []string{"etc_20261101-000000_aaaa", "etc_20261102-000000_bbbb", "etc_20261103-000000_cccc"} {
		s := filepath.Join(snaps, name)
		must(t, os.MkdirAll(s, 0o755))
		write(t, filepath.Join(s, "changes"), fmt.Sprintf("version %d\n", i), mt)
		if prev == "" {
			write(t, filepath.Join(s, "same"), "unchanged\n", mt)
			write(t, filepath.Join(s, "sub", "deep"), strings.Repeat("d", 300000), mt)
			write(t, filepath.Join(s, "x"), "one file, two names\n", mt)
			must(t, os.Link(filepath.Join(s, "x"), filepath.Join(s, "y")))
			must(t, os.Symlink("/etc/passwd", filepath.Join(s, "abs-link")))
			must(t, unix.Mkfifo(filepath.Join(s, "fifo"), 0o600))
			if os.Geteuid() == 0 {
				must(t, unix.Mknod(filepath.Join(s, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
				must(t, os.Lchown(filepath.Join(s, "same"), 1234, 5678))
				write(t, filepath.Join(s, "suid"), "#!/bin/sh\n", mt)
				must(t, os.Lchown(filepath.Join(s, "suid"), 1234, 5678))
				must(t, os.Chmod(filepath.Join(s, "suid"), 0o4755|fs.ModeSetuid))
				must(t, os.Chtimes(filepath.Join(s, "suid"), mt, mt))
			}
		} else {
			must(t, os.Mkdir(filepath.Join(s, "sub"), 0o755))
			for _, f := range []string{"same", "sub/deep", "x", "y", "abs-link", "fifo", "null", "suid"} {
				if _, err := os.Lstat(filepath.Join(prev, f)); err == nil {
					must(t, os.Link(filepath.Join(prev, f), filepath.Join(s, f)))
				}
			}
		}
		must(t, os.Chtimes(filepath.Join(s, "sub"), mt, mt))
		must(t, os.WriteFile(filepath.Join(snaps, name+".json"), []byte(`{"name": "`+name+`"}`), 0o644))
		must(t, os.Chtimes(s, mt, mt))
		prev = s
	}
	must(t, os.Symlink("etc_20261103-000000_cccc", filepath.Join(snaps, "latest")))
	return dir
}

func TestSendReceive(t *testing.T) {
	t.Parallel()
	a, b := newUnit(t), newUnit(t)
	dir := addMachine(t, a)
	var stream bytes.Buffer
	sent, err := Send(context.Background(), &stream, SendOptions{Machines: a.m, Machine: testUUID, Storage: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if sent.StreamBytes != int64(stream.Len()) {
		t.Errorf("StreamBytes %d, stream %d bytes", sent.StreamBytes, stream.Len())
	}
	got, err := Receive(context.Background(), bytes.NewReader(stream.Bytes()), ReceiveOptions{Machines: b.m, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(b.volume, testUUID); got.Dir != want {
		t.Errorf("received into %s, want %s", got.Dir, want)
	}
	if diff := cmp.Diff(agenttest.Tree(t, dir), agenttest.Tree(t, got.Dir)); diff != "" {
		t.Errorf("received tree differs (-sent +received):\n%s", diff)
	}
	if target, err := os.Readlink(b.machineDir()); err != nil || target != got.Dir {
		t.Errorf("machines/%s -> %q, %v", testUUID, target, err)
	}
	if target, err := os.Readlink(filepath.Join(b.varDir, "machines", "prod-web-web1")); err != nil || target != testUUID {
		t.Errorf("name link -> %q, %v", target, err)
	}
	if !slices.Equal(got.Names, []string{"prod-web-web1"}) {
		t.Errorf("names linked %q", got.Names)
	}
	// Data crossed once: "same", "sub/deep" and "x" once, "changes" three
	// times, the .json files.
	if sent.Stats != got.Stats {
		t.Errorf("sent %+v, received %+v", sent.Stats, got.Stats)
	}
	if wantLinks := int64(2*6 + 1); (os.Geteuid() == 0 && got.Stats.HardLinks != wantLinks+4) || (os.Geteuid() != 0 && got.Stats.HardLinks != wantLinks) {
		t.Errorf("hard links %d", got.Stats.HardLinks)
	}

	// The same stream again: refused, naming the machine, nothing changed.
	before := agenttest.Tree(t, b.volume)
	_, err = Receive(context.Background(), bytes.NewReader(stream.Bytes()), ReceiveOptions{Machines: b.m})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), testUUID) {
		t.Fatalf("second receive: %v, want ErrExists naming %s", err, testUUID)
	}
	if diff := cmp.Diff(before, agenttest.Tree(t, b.volume)); diff != "" {
		t.Errorf("refused receive changed the volume:\n%s", diff)
	}
}

// TestSendLinkCacheBounded: with a cache of one entry, two files linked
// inside a snapshot far apart in the walk are sent twice; the content
// still arrives, and links across snapshots (found without the cache)
// all survive.
func TestSendLinkCacheBounded(t *testing.T) {
	t.Parallel()
	a, b := newUnit(t), newUnit(t)
	dir := addMachine(t, a)
	var stream bytes.Buffer
	if _, err := Send(context.Background(), &stream, SendOptions{Machines: a.m, Machine: testUUID, LinkCache: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := Receive(context.Background(), &stream, ReceiveOptions{Machines: b.m})
	if err != nil {
		t.Fatal(err)
	}
	for _, snap := range []string{"etc_20261102-000000_bbbb", "etc_20261103-000000_cccc"} {
		for _, f := range []string{"same", "sub/deep", "x", "y"} {
			p := filepath.Join("etc.snapshots", snap, f)
			q := filepath.Join("etc.snapshots", "etc_20261101-000000_aaaa", f)
			if agenttest.Inode(t, filepath.Join(got.Dir, p)) != agenttest.Inode(t, filepath.Join(got.Dir, q)) {
				t.Errorf("%s not linked to %s", p, q)
			}
		}
	}
	if d, _ := os.ReadFile(filepath.Join(dir, "etc.snapshots/etc_20261101-000000_aaaa/y")); string(d) != "one file, two names\n" {
		t.Errorf("y = %q", d)
	}
}

// TestReceiveRefusesDamage: a truncated stream (at many points) or one
// with a byte changed is refused and leaves the volume and VAR_DIR as
// they were.
func TestReceiveRefusesDamage(t *testing.T) {
	t.Parallel()
	a := newUnit(t)
	addMachine(t, a)
	var stream bytes.Buffer
	if _, err := Send(context.Background(), &stream, SendOptions{Machines: a.m, Machine: testUUID}); err != nil {
		t.Fatal(err)
	}
	full := stream.Bytes()
	flip := func(at int) []byte {
		c := bytes.Clone(full)
		c[at] ^= 0x01
		return c
	}
	dataAt := bytes.Index(full, []byte("version 1\n"))
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"header only", full[:1024]},
		{"cut in a file", full[:dataAt+3]},
		{"cut before the end of archive", full[:len(full)-trailerLen-1024]},
		{"cut in the trailer", full[:len(full)-10]},
		{"no trailer", full[:len(full)-trailerLen]},
		{"a byte of file data changed", flip(dataAt)},
		{"a byte of the trailer changed", flip(len(full) - 5)},
		{"a byte of a header changed", flip(dataAt - 512 + 3)},
		{"data after the trailer", append(bytes.Clone(full), 'x')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newUnit(t)
			before := agenttest.Tree(t, filepath.Dir(b.volume))
			_, err := Receive(context.Background(), bytes.NewReader(tt.data), ReceiveOptions{Machines: b.m})
			if err == nil {
				t.Fatal("damaged stream accepted")
			}
			t.Logf("refused: %v", err)
			if after := agenttest.Tree(t, filepath.Dir(b.volume)); !sameNames(before, after) {
				t.Errorf("refused stream left files behind:\n%s", cmp.Diff(keys(before), keys(after)))
			}
		})
	}
}

// sameNames compares the files present, leaving the volume marker,
// which a first use writes, out.
func sameNames(a, b map[string]agenttest.TreeEntry) bool { return slices.Equal(keys(a), keys(b)) }

func keys(m map[string]agenttest.TreeEntry) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, backup.MarkerFile) || strings.HasPrefix(k, "var/volumes.json") || k == "var" || k == "var/lock" || strings.HasPrefix(k, "var/lock/") || k == "var/machines" {
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// hostile builds a stream as an attacker would: tar entries of its choice
// with a correct header and checksum.
func hostile(t testing.TB, entries []*tar.Header, data map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	sum := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(&buf, sum))
	js := `{"format": "turku-storage-transfer", "version": 1, "machine": "` + testUUID + `", "names": []}`
	must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: headerName, Size: int64(len(js)), Mode: 0o644}))
	tw.Write([]byte(js))
	for _, e := range entries {
		h := *e // the tables share headers between parallel subtests
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data[h.Name]))
		}
		h.Mode |= 0o644
		h.Format = tar.FormatPAX
		must(t, tw.WriteHeader(&h))
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(data[h.Name]))
		}
	}
	must(t, tw.Close())
	buf.Write(trailer(sum.Sum(nil)))
	return buf.Bytes()
}

// TestReceiveRefusesHostile: names that leave the machine directory and
// symlink tricks are refused with nothing written outside (or inside).
func TestReceiveRefusesHostile(t *testing.T) {
	t.Parallel()
	root := dirHdr(testUUID + "/")
	tests := []struct {
		name    string
		entries func(outside string) []*tar.Header
		want    string
	}{
		{"dot dot", func(string) []*tar.Header {
			return []*tar.Header{root, reg(testUUID + "/../../evil")}
		}, `".." is not a file name`},
		{"absolute", func(o string) []*tar.Header {
			return []*tar.Header{root, reg(o + "/evil")}
		}, "absolute path"},
		{"other machine", func(string) []*tar.Header {
			return []*tar.Header{root, reg("00000000-0000-4000-8000-000000000000/evil")}
		}, "outside the machine directory"},
		{"write through a symlink", func(o string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeSymlink, Name: testUUID + "/esc", Linkname: o}, reg(testUUID + "/esc/evil")}
		}, "not in the directory sent before it"},
		{"directory over a symlink", func(o string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeSymlink, Name: testUUID + "/esc", Linkname: o}, dirHdr(testUUID + "/esc/"), reg(testUUID + "/esc/evil")}
		}, "file exists"},
		{"file over a symlink", func(o string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeSymlink, Name: testUUID + "/esc", Linkname: o + "/evil"}, reg(testUUID + "/esc")}
		}, "file exists"},
		{"hard link through a symlink", func(o string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeSymlink, Name: testUUID + "/esc", Linkname: o}, {Typeflag: tar.TypeLink, Name: testUUID + "/got", Linkname: testUUID + "/esc/secret"}}
		}, "refused hard link"},
		{"hard link outside", func(o string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeLink, Name: testUUID + "/got", Linkname: o + "/secret"}}
		}, "refused hard link"},
		{"back into a finished directory", func(string) []*tar.Header {
			return []*tar.Header{root, dirHdr(testUUID + "/a/"), dirHdr(testUUID + "/b/"), reg(testUUID + "/a/late")}
		}, "not in the directory sent before it"},
		{"no machine directory first", func(string) []*tar.Header {
			return []*tar.Header{reg(testUUID + "/early")}
		}, "not in the directory sent before it"},
		{"unknown type", func(string) []*tar.Header {
			return []*tar.Header{root, {Typeflag: tar.TypeGNULongName + 1, Name: testUUID + "/odd"}}
		}, "is not part of a transfer stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newUnit(t)
			outside := t.TempDir()
			must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600))
			data := map[string]string{}
			entries := tt.entries(outside)
			for _, h := range entries {
				data[h.Name] = "written"
			}
			before := agenttest.Tree(t, filepath.Dir(b.volume))
			_, err := Receive(context.Background(), bytes.NewReader(hostile(t, entries, data)), ReceiveOptions{Machines: b.m})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if got := agenttest.Tree(t, outside); len(got) != 2 {
				t.Errorf("outside directory changed: %v", keys(got))
			}
			if fi, _ := os.Stat(filepath.Join(outside, "secret")); fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Error("a file outside was hard-linked")
			}
			if after := agenttest.Tree(t, filepath.Dir(b.volume)); !sameNames(before, after) {
				t.Errorf("refused stream left files behind:\n%s", cmp.Diff(keys(before), keys(after)))
			}
		})
	}
	// The well-formed hostile stream without tricks is accepted: the
	// refusals above are for the tricks.
	b := newUnit(t)
	if _, err := Receive(context.Background(), bytes.NewReader(hostile(t, []*tar.Header{dirHdr(testUUID + "/"), reg(testUUID + "/ok")}, map[string]string{testUUID + "/ok": "fine"})), ReceiveOptions{Machines: b.m}); err != nil {
		t.Fatalf("plain stream refused: %v", err)
	}
}

func dirHdr(name string) *tar.Header { return &tar.Header{Typeflag: tar.TypeDir, Name: name} }
func reg(name string) *tar.Header    { return &tar.Header{Typeflag: tar.TypeReg, Name: name} }

func TestReceiveExpect(t *testing.T) {
	t.Parallel()
	a, b := newUnit(t), newUnit(t)
	addMachine(t, a)
	var stream bytes.Buffer
	if _, err := Send(context.Background(), &stream, SendOptions{Machines: a.m, Machine: testUUID}); err != nil {
		t.Fatal(err)
	}
	other := "00000000-0000-4000-8000-000000000000"
	_, err := Receive(context.Background(), &stream, ReceiveOptions{Machines: b.m, Expect: other})
	if err == nil || !strings.Contains(err.Error(), "not "+other) {
		t.Fatalf("got %v, want a refusal naming both machines", err)
	}
	if _, err := os.Lstat(filepath.Join(b.volume, testUUID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused receive wrote the machine: %v", err)
	}
}

// FuzzReceive: whatever the stream, Receive either puts one machine
// directory on the volume or refuses and leaves the volume as it was,
// and writes nothing elsewhere.
func FuzzReceive(f *testing.F) {
	a := newUnit(f)
	addMachine(f, a)
	var stream bytes.Buffer
	if _, err := Send(context.Background(), &stream, SendOptions{Machines: a.m, Machine: testUUID}); err != nil {
		f.Fatal(err)
	}
	f.Add(stream.Bytes())
	f.Add(hostile(f, []*tar.Header{dirHdr(testUUID + "/"), {Typeflag: tar.TypeSymlink, Name: testUUID + "/esc", Linkname: "/tmp"}, reg(testUUID + "/esc/evil")}, map[string]string{testUUID + "/esc/evil": "x"}))
	f.Add(hostile(f, []*tar.Header{dirHdr(testUUID + "/"), dirHdr(testUUID + "/a/"), reg(testUUID + "/a/f"), {Typeflag: tar.TypeLink, Name: testUUID + "/g", Linkname: testUUID + "/a/f"}}, map[string]string{testUUID + "/a/f": "data"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		u := &unit{varDir: filepath.Join(root, "var"), volume: filepath.Join(root, "volume")}
		must(t, os.MkdirAll(u.volume, 0o755))
		m, err := backup.NewMachines(backup.Options{VarDir: u.varDir, Volumes: []backup.Volume{{Name: "v", Path: u.volume, AcceptNew: true, HighWaterPct: 100}}})
		must(t, err)
		_, err = Receive(context.Background(), bytes.NewReader(data), ReceiveOptions{Machines: m})
		entries, _ := os.ReadDir(u.volume)
		var names []string
		for _, e := range entries {
			if e.Name() != backup.MarkerFile {
				names = append(names, e.Name())
			}
		}
		switch {
		case err != nil && len(names) != 0:
			t.Fatalf("refused (%v) but left %q", err, names)
		case err == nil && !slices.Equal(names, []string{testUUID}):
			t.Fatalf("accepted, volume holds %q", names)
		}
		top, _ := os.ReadDir(root)
		for _, e := range top {
			if e.Name() != "var" && e.Name() != "volume" && e.Name() != "lock" {
				t.Fatalf("wrote %s beside the volume", e.Name())
			}
		}
	})
}

// SendFile leaves a whole stream at its path, which Receive takes, and a
// failed send leaves no file there, nor its temporary one.
func TestSendFile(t *testing.T) {
	a, b := newUnit(t), newUnit(t)
	addMachine(t, a)
	dir := t.TempDir()
	path := filepath.Join(dir, "web1.turku")
	sent, err := SendFile(context.Background(), path, SendOptions{Machines: a.m, Machine: testUUID})
	must(t, err)
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() != sent.StreamBytes {
		t.Errorf("file has %d bytes, Send reported %d", fi.Size(), sent.StreamBytes)
	}
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	if _, err := Receive(context.Background(), f, ReceiveOptions{Machines: b.m}); err != nil {
		t.Errorf("receiving the file: %v", err)
	}

	failed := filepath.Join(dir, "other.turku")
	if _, err := SendFile(context.Background(), failed, SendOptions{Machines: a.m, Machine: "0bef0a75-5a9b-43f7-a66a-7e8c6d7ad91d"}); err == nil {
		t.Error("sending a machine with no data here succeeded")
	}
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 1 || entries[0].Name() != "web1.turku" {
		t.Errorf("after a failed send the directory holds %v, want only web1.turku", entries)
	}
}
