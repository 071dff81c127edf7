package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOrphans(t *testing.T) {
	s := New(Options{})
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const other = "1a2b3c4d-0000-4000-8000-000000000001"
	s.SetOrphans(map[string]Orphan{machine: {Unit: "web2", Since: t0.Add(time.Hour)}, other: {Since: t0}})
	s.DepartedKeyRefused()
	s.DepartedKeyRefused()
	want := `
# HELP turku_storage_orphaned_machine_since_timestamp_seconds When the key refresh first found the machine no longer assigned to this unit, its data still here.
# TYPE turku_storage_orphaned_machine_since_timestamp_seconds gauge
turku_storage_orphaned_machine_since_timestamp_seconds{machine="0f3c5a5e-1b2c-4d3e-8f9a-0b1c2d3e4f50",unit="web2"} 1.7934948e+09
turku_storage_orphaned_machine_since_timestamp_seconds{machine="1a2b3c4d-0000-4000-8000-000000000001",unit=""} 1.7934912e+09
# HELP turku_storage_orphaned_machines Machines with data on this unit that the coordinator no longer assigns here (moved or deactivated): never counted as stale; purge them with ` + "`turku-storage orphans purge`" + `.
# TYPE turku_storage_orphaned_machines gauge
turku_storage_orphaned_machines 2
# HELP turku_storage_ssh_departed_key_refusals_total Connections refused because they offered the key of a machine no longer assigned to this unit (it left within the last 30 days); also counted in turku_storage_ssh_auth_failures_total.
# TYPE turku_storage_ssh_departed_key_refusals_total counter
turku_storage_ssh_departed_key_refusals_total 2
`
	if err := testutil.CollectAndCompare(s.OrphanCollector(), strings.NewReader(want),
		"turku_storage_orphaned_machines", "turku_storage_orphaned_machine_since_timestamp_seconds",
		"turku_storage_ssh_departed_key_refusals_total"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.OrphanCollector()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	// Status lists them longest orphaned first; the caller's map is a copy.
	got := s.Status().Orphans
	wantStatus := []OrphanStatus{{Machine: other, Since: t0}, {Machine: machine, Unit: "web2", Since: t0.Add(time.Hour)}}
	if diff := cmp.Diff(wantStatus, got); diff != "" {
		t.Errorf("status orphans (-want +got):\n%s", diff)
	}
	m := s.Orphans()
	delete(m, machine)
	if len(s.Orphans()) != 2 {
		t.Error("Orphans returned the state's own map")
	}
	s.SetOrphans(nil)
	if got := s.Status().Orphans; got == nil || len(got) != 0 {
		t.Errorf("status orphans after none: %#v, want an empty list", got)
	}
}
