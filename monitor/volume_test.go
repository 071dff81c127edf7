package monitor

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The volume series: writable follows the volume check's state, the
// inode series are exported where the filesystem counts inodes, and a
// volume whose usage could not be read has only its thresholds and state.
func TestCollectorVolumes(t *testing.T) {
	s := New(Options{Volumes: func() []Volume {
		return []Volume{
			{Name: "good", State: "ok", SizeBytes: 1000, UsedBytes: 500, FreeBytes: 450, MaxUsagePct: 95,
				Inodes: 100, InodesFree: 4, MaxInodeUsagePct: 90},
			{Name: "ro", State: "read-only", SizeBytes: 1000, UsedBytes: 10, FreeBytes: 990, MaxUsagePct: 95, MaxInodeUsagePct: 95},
			{Name: "gone", State: "missing", Err: "volume gone is missing", MaxUsagePct: 95, MaxInodeUsagePct: 95},
		}
	}})
	want := `
# HELP turku_storage_volume_inodes_free Free inodes on the volume's filesystem.
# TYPE turku_storage_volume_inodes_free gauge
turku_storage_volume_inodes_free{volume="good"} 4
# HELP turku_storage_volume_inodes_total Inodes of the volume's filesystem (absent where it does not count them).
# TYPE turku_storage_volume_inodes_total gauge
turku_storage_volume_inodes_total{volume="good"} 100
# HELP turku_storage_volume_max_inode_usage_ratio The disk guard for inodes: share of inodes used above which no backup starts on the volume (max_inode_usage_pct/100).
# TYPE turku_storage_volume_max_inode_usage_ratio gauge
turku_storage_volume_max_inode_usage_ratio{volume="gone"} 0.95
turku_storage_volume_max_inode_usage_ratio{volume="good"} 0.9
turku_storage_volume_max_inode_usage_ratio{volume="ro"} 0.95
# HELP turku_storage_volume_used_bytes Bytes used on the volume's filesystem, as df counts them (blocks reserved for root are neither used nor free).
# TYPE turku_storage_volume_used_bytes gauge
turku_storage_volume_used_bytes{volume="good"} 500
turku_storage_volume_used_bytes{volume="ro"} 10
# HELP turku_storage_volume_writable 1 if the volume is there, mounted and writable (the volume check), else 0: missing, not mounted or read-only.
# TYPE turku_storage_volume_writable gauge
turku_storage_volume_writable{volume="gone"} 0
turku_storage_volume_writable{volume="good"} 1
turku_storage_volume_writable{volume="ro"} 0
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want),
		"turku_storage_volume_writable", "turku_storage_volume_inodes_total", "turku_storage_volume_inodes_free",
		"turku_storage_volume_max_inode_usage_ratio", "turku_storage_volume_used_bytes"); err != nil {
		t.Error(err)
	}
}
