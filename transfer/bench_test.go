package transfer

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchMachine lays out a machine of three link-dest snapshots of n
// files (1-8 KiB, 100 to a directory), each sharing the inodes of the one
// before but for 1% of its files, as bench/transfer.sh does.
func benchMachine(b *testing.B, u *unit, n int) string {
	b.Helper()
	dir := filepath.Join(u.volume, testUUID)
	os.MkdirAll(filepath.Join(u.varDir, "machines"), 0o700)
	if err := os.Symlink(dir, filepath.Join(u.varDir, "machines", testUUID)); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 8192)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	file := func(p string) {
		if err := os.WriteFile(p, data[:1024+rnd.IntN(7168)], 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var prev string
	for s := range 3 {
		snap := filepath.Join(dir, "etc.snapshots", fmt.Sprintf("etc_202611%02d-030000_%04x", s+1, s))
		for i := range n {
			sub := filepath.Join(snap, fmt.Sprintf("d%04d", i/100))
			if i%100 == 0 {
				os.MkdirAll(sub, 0o755)
			}
			p := filepath.Join(sub, "f"+strconv.Itoa(i))
			if prev == "" || rnd.IntN(100) == 0 {
				file(p)
			} else if err := os.Link(filepath.Join(prev, fmt.Sprintf("d%04d", i/100), "f"+strconv.Itoa(i)), p); err != nil {
				b.Fatal(err)
			}
		}
		os.WriteFile(snap+".json", []byte(`{"name": "`+filepath.Base(snap)+`"}`), 0o644)
		prev = snap
	}
	os.Symlink(filepath.Base(prev), filepath.Join(dir, "etc.snapshots", "latest"))
	return dir
}

// BenchmarkSendReceive moves a machine of 3 × 20,000 files through a pipe
// (Send and Receive in one process, as `send | receive` in two) and,
// in the same iterations, copies it with rsync -aH --numeric-ids; the
// "ratio" metric is send|receive's time over rsync's.
func BenchmarkSendReceive(b *testing.B) {
	a := newUnit(b)
	dir := benchMachine(b, a, 20000)
	var ours, theirs time.Duration
	for i := 0; b.Loop(); i++ {
		dst := newUnit(b)
		start := time.Now()
		pr, pw := io.Pipe()
		errc := make(chan error, 1)
		go func() {
			_, err := Send(context.Background(), pw, SendOptions{Machines: a.m, Machine: testUUID})
			pw.CloseWithError(err)
			errc <- err
		}()
		if _, err := Receive(context.Background(), pr, ReceiveOptions{Machines: dst.m}); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		out := filepath.Join(b.TempDir(), "rsync")
		start = time.Now()
		if msg, err := exec.Command("rsync", "-aH", "--numeric-ids", dir+"/", out+"/").CombinedOutput(); err != nil {
			b.Fatalf("rsync: %v: %s", err, msg)
		}
		theirs += time.Since(start)
		os.RemoveAll(out)
		os.RemoveAll(dst.volume)
	}
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
	b.ReportMetric(ours.Seconds()/float64(b.N), "s/move")
	b.ReportMetric(theirs.Seconds()/float64(b.N), "s/rsync")
}
