package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSourceRemovedDropsSeries: a source deleted from a machine that stays
// assigned here is no longer exported once the API said so; the
// machine's other sources and the machine itself still are.
func TestSourceRemovedDropsSeries(t *testing.T) {
	s := New(Options{})
	end := time.Unix(1764039600, 0)
	s.SetAssigned(map[string]Assignment{machine: {Unit: "web1", Since: end.Add(-24 * time.Hour)}})
	s.BackupFinished(machine, "web1", "etc", true, end.Add(-time.Minute), end, "")
	s.BackupFinished(machine, "web1", "var", false, end.Add(-time.Minute), end, "failed")
	s.SourceRemoved(machine, "var")
	want := `
# HELP turku_storage_source_last_attempt_timestamp_seconds When the source's last backup attempt ended, successful or not.
# TYPE turku_storage_source_last_attempt_timestamp_seconds gauge
turku_storage_source_last_attempt_timestamp_seconds{machine="` + machine + `",source="etc",unit="web1"} 1.7640396e+09
# HELP turku_storage_machine_assigned_timestamp_seconds When the key refresh first listed the machine as assigned to this unit.
# TYPE turku_storage_machine_assigned_timestamp_seconds gauge
turku_storage_machine_assigned_timestamp_seconds{machine="` + machine + `",unit="web1"} 1.7639532e+09
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want),
		"turku_storage_source_last_attempt_timestamp_seconds", "turku_storage_machine_assigned_timestamp_seconds"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(s.Collector(), "turku_storage_source_consecutive_failures"); got != 1 {
		t.Errorf("%d failure series, want etc's only", got)
	}
}

func TestReportSpoolMetrics(t *testing.T) {
	s := New(Options{
		SpooledReports: func() int { return 8 },
		ReportSpool: func() SpoolUsage {
			return SpoolUsage{Reports: 7, Bytes: 4096, MaxReports: 10, MaxBytes: 1 << 20, Dropped: 2}
		},
	})
	want := `
# HELP turku_storage_reports_spooled Source reports waiting in VAR_DIR/reports for the API.
# TYPE turku_storage_reports_spooled gauge
turku_storage_reports_spooled 7
# HELP turku_storage_reports_spooled_bytes Bytes of the source reports waiting in VAR_DIR/reports.
# TYPE turku_storage_reports_spooled_bytes gauge
turku_storage_reports_spooled_bytes 4096
# HELP turku_storage_report_spool_max_reports The report spool's cap in reports (report_spool_max_count); beyond it the oldest are dropped.
# TYPE turku_storage_report_spool_max_reports gauge
turku_storage_report_spool_max_reports 10
# HELP turku_storage_report_spool_max_bytes The report spool's cap in bytes (report_spool_max_bytes); beyond it the oldest are dropped.
# TYPE turku_storage_report_spool_max_bytes gauge
turku_storage_report_spool_max_bytes 1.048576e+06
# HELP turku_storage_reports_dropped_total Source reports dropped from the full spool, undelivered, since start.
# TYPE turku_storage_reports_dropped_total counter
turku_storage_reports_dropped_total 2
`
	if err := testutil.CollectAndCompare(s.Collector(), strings.NewReader(want),
		"turku_storage_reports_spooled", "turku_storage_reports_spooled_bytes", "turku_storage_report_spool_max_reports",
		"turku_storage_report_spool_max_bytes", "turku_storage_reports_dropped_total"); err != nil {
		t.Error(err)
	}
}
