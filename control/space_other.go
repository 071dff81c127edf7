//go:build !linux

package control

// volumeSpace is only implemented on Linux.
func volumeSpace(v Volume) Volume {
	v.Error = "free space is only measured on Linux"
	return v
}
