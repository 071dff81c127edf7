package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/backup"
	"github.com/turku-backup/turku-storage/monitor"
)

// TestVolumes rates each volume as the disk guard sees it: unusable or
// past a threshold is CRITICAL, unreadable a WARNING, and every readable
// one has its perfdata.
func TestVolumes(t *testing.T) {
	for _, tt := range []struct {
		name           string
		vol            monitor.Volume
		state          int
		full, unusable int
		summary        []string
		perfdata       []string
	}{
		{name: "ok", vol: monitor.Volume{Name: "v", State: backup.VolumeOK, UsedPct: 50, MaxUsagePct: 95},
			perfdata: []string{"'used_v'=50.0%;;95;0;100"}},
		{name: "full", vol: monitor.Volume{Name: "v", State: backup.VolumeOK, UsedPct: 96, MaxUsagePct: 95},
			state: Critical, full: 1,
			summary:  []string{"volume v 96.0% full, above max_usage_pct 95%: no backup starts there"},
			perfdata: []string{"'used_v'=96.0%;;95;0;100"}},
		{name: "inodes", vol: monitor.Volume{Name: "v", State: backup.VolumeOK, UsedPct: 10, MaxUsagePct: 95,
			Inodes: 100, InodeUsedPct: 99, MaxInodeUsagePct: 95},
			state: Critical, full: 1,
			summary:  []string{"volume v: 99.0% of inodes used, above max_inode_usage_pct 95%: no backup starts there"},
			perfdata: []string{"'used_v'=10.0%;;95;0;100", "'inodes_used_v'=99.0%;;95;0;100"}},
		{name: "not mounted", vol: monitor.Volume{Name: "v", State: backup.VolumeNotMounted, Message: "volume v is not mounted", Err: "volume v is not mounted"},
			state: Critical, unusable: 1, summary: []string{"volume v is not mounted"}},
		{name: "unreadable", vol: monitor.Volume{Name: "v", State: backup.VolumeOK, Err: "statfs: permission denied"},
			state: Warning},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			full, unusable := r.volumes([]monitor.Volume{tt.vol})
			if r.State != tt.state || full != tt.full || unusable != tt.unusable {
				t.Errorf("state %d, full %d, unusable %d; want %d, %d, %d", r.State, full, unusable, tt.state, tt.full, tt.unusable)
			}
			if diff := cmp.Diff(tt.summary, r.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.perfdata, r.Perfdata); diff != "" {
				t.Errorf("perfdata (-want +got):\n%s", diff)
			}
		})
	}
}
