//go:build bench

package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// fixedTime is every generated file's mtime, so that the datasets are the
// same bytes and metadata on every run.
var fixedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// smallFiles writes n files of 1-4 KiB of random bytes under dir, 100 to a
// directory, 10 directories to a parent: dir/dNN/dNN/fNNNN.
func smallFiles(dir string, n int, seed uint64) (int64, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	data := rand.NewChaCha8([32]byte{byte(seed)})
	return randomFiles(dir, n, rng, data, 3*1024, 100, func(i int) string {
		return filepath.Join(fmt.Sprintf("d%02d", i/1000), fmt.Sprintf("d%02d", i/100%10), fmt.Sprintf("f%05d", i))
	})
}

// randomFiles writes n files under dir, file i at the relative path
// name(i) whose directory is made when i%perDir is 0: 1 KiB and
// rng.IntN(extra+1) bytes more of data each, mtime fixedTime, drawn in
// this order so that a seed always makes the same tree.
func randomFiles(dir string, n int, rng *rand.Rand, data *rand.ChaCha8, extra, perDir int, name func(i int) string) (int64, error) {
	buf := make([]byte, 1024+extra)
	var total int64
	for i := range n {
		path := filepath.Join(dir, name(i))
		if i%perDir == 0 {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return 0, err
			}
		}
		size := 1024 + rng.IntN(extra+1)
		_, _ = data.Read(buf[:size])
		if err := os.WriteFile(path, buf[:size], 0o644); err != nil {
			return 0, err
		}
		if err := os.Chtimes(path, fixedTime, fixedTime); err != nil {
			return 0, err
		}
		total += int64(size)
	}
	return total, fixTimes(dir)
}

// bigFiles writes n files of size bytes of random data under dir.
func bigFiles(dir string, n int, size int64, seed uint64) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("big%d.bin", i))
		f, err := os.Create(path)
		if err != nil {
			return 0, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		_, err = io.CopyN(w, rand.NewChaCha8([32]byte{byte(seed), byte(i)}), size)
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
		if err := os.Chtimes(path, fixedTime, fixedTime); err != nil {
			return 0, err
		}
	}
	return int64(n) * size, fixTimes(dir)
}

// fixTimes gives every directory under dir the fixed mtime.
func fixTimes(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chtimes(path, fixedTime, fixedTime)
	})
}
