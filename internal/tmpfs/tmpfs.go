package tmpfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs with options opts (mount -o, e.g. "size=8m" or
// "nr_inodes=64") on dir, an existing empty directory, and unmounts it
// when the test ends (lazily should the plain unmount fail). It skips the
// test when not run as root.
func Mount(t testing.TB, dir string, opts ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	args := []string{"-t", "tmpfs"}
	if len(opts) > 0 {
		args = append(args, "-o", strings.Join(opts, ","))
	}
	run(t, append(args, "tmpfs", dir)...)
	t.Cleanup(func() { unmount(t, dir) })
}

// Remount changes the options of the tmpfs on dir, e.g. "ro" or "rw".
func Remount(t testing.TB, dir string, opts ...string) {
	t.Helper()
	run(t, "-o", "remount,"+strings.Join(opts, ","), dir)
}

// Unmount unmounts dir now, leaving the empty mount point.
func Unmount(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v: %s", dir, err, out)
	}
}

// unmount unmounts dir if it is still a mount point, falling back to a
// lazy unmount.
func unmount(t testing.TB, dir string) {
	if exec.Command("mountpoint", "-q", dir).Run() != nil {
		return
	}
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Logf("umount %s: %v: %s; unmounting lazily", dir, err, out)
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v: %s", dir, err, out)
		}
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// FillInodes creates empty files in dir until its filesystem has no free
// inode left (f_ffree 0), and returns the directory holding them.
func FillInodes(t testing.TB, dir string) string {
	t.Helper()
	fill := filepath.Join(dir, "fill")
	if err := os.Mkdir(fill, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		f, err := os.Create(filepath.Join(fill, strconv.Itoa(i)))
		if err != nil {
			break
		}
		f.Close()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Ffree != 0 {
		t.Fatalf("after filling %s: %d inodes free, %v", dir, st.Ffree, err)
	}
	return fill
}
