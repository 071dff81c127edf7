// Package tmpfs mounts small tmpfs filesystems for tests that need a real
// read-only, out-of-inodes or unmounted volume. It is for tests only;
// mounting needs root, and Mount skips the test otherwise.
package tmpfs
