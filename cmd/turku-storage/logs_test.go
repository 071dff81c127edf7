package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/config"
	"github.com/turku-backup/turku-storage/history"
)

// TestPrintLogs: a header row over aligned columns, a failure's summary
// indented under its row, and one file counted as one.
func TestPrintLogs(t *testing.T) {
	end := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	entries := []history.Entry{
		{Machine: "m-1", Attempt: history.Attempt{Source: "home", Unit: "web1", Begin: end.Add(-90 * time.Second), End: end,
			Failures: 2, Summary: "rsync exited with return code 5\n@ERROR: auth failed on module home\n"}},
		{Machine: "m-1", Attempt: history.Attempt{Source: "etc", Unit: "web1", Begin: end.Add(-time.Hour - time.Minute), End: end.Add(-time.Hour),
			Success: true, Snapshot: "etc_20261201-020000_ab12", TotalSize: 2048, TransferredSize: 1024, Files: 1}},
	}
	var out bytes.Buffer
	g := &globals{stdout: &out}
	if err := printLogs(g, &config.Config{Location: time.UTC}, entries); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"FINISHED              UNIT  SOURCE  RESULT     SNAPSHOT                  DURATION  TRANSFERRED",
		"2026-12-01T03:00:00Z  web1  home    failed(2)  -                         1m30s     -",
		"    rsync exited with return code 5",
		"    @ERROR: auth failed on module home",
		"2026-12-01T02:00:00Z  web1  etc     ok         etc_20261201-020000_ab12  1m0s      1.0 KiB of 2.0 KiB, 1 file",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}
}
