package control

import "golang.org/x/sys/unix"

// volumeSpace fills v's space from statfs(2).
func volumeSpace(v Volume) Volume {
	var sf unix.Statfs_t
	if err := unix.Statfs(v.Path, &sf); err != nil {
		v.Error = err.Error()
		return v
	}
	bs := sf.Frsize
	if bs <= 0 {
		bs = sf.Bsize
	}
	v.SizeBytes = int64(sf.Blocks) * bs
	v.FreeBytes = int64(sf.Bavail) * bs
	if v.SizeBytes > 0 {
		v.UsedPct = (1 - float64(v.FreeBytes)/float64(v.SizeBytes)) * 100
	}
	return v
}
