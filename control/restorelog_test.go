package control

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/monitor"
)

// TestRestoreLog: serve's log names who restored what, with the socket
// peer's uid and pid beside the name the client gives; what it should not
// write into its log is refused and logs nothing.
func TestRestoreLog(t *testing.T) {
	var logs agenttest.Output
	path, _ := startServer(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, monitor.Options{})
	ctx := context.Background()
	start := RestoreLog{Event: RestoreStarted, Machine: "m-a", Unit: "web1", Source: "etc", Snapshot: "etc_20261206-120000_ab12",
		Path: "sub/deep", Module: "turku-restore", Port: 50001, User: "alice"}
	if err := LogRestore(ctx, path, start); err != nil {
		t.Fatal(err)
	}
	end := start
	end.Event, end.Bytes, end.Result = RestoreFinished, 4096, "ok"
	if err := LogRestore(ctx, path, end); err != nil {
		t.Fatal(err)
	}
	peer := fmt.Sprintf("peer_uid=%d peer_pid=%d", os.Getuid(), os.Getpid())
	for _, want := range []string{
		`level=INFO msg="restore started" machine=m-a unit=web1 source=etc snapshot=etc_20261206-120000_ab12 path=sub/deep module=turku-restore port=50001 dry_run=false user=alice ` + peer,
		`level=INFO msg="restore finished" machine=m-a unit=web1 source=etc snapshot=etc_20261206-120000_ab12 path=sub/deep module=turku-restore port=50001 dry_run=false user=alice ` + peer + ` bytes=4096 result=ok`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks\n%s\nlog:\n%s", want, logs.String())
		}
	}

	failed := end
	failed.Result = "rsync exited with return code 5"
	if err := LogRestore(ctx, path, failed); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `level=WARN msg="restore finished"`) {
		t.Errorf("a failed restore is not a WARN:\n%s", logs.String())
	}

	before := logs.String()
	for name, bad := range map[string]RestoreLog{
		"no event":        {Machine: "m-a", Source: "etc", Snapshot: "s"},
		"unknown event":   {Event: "begin", Machine: "m-a", Source: "etc", Snapshot: "s"},
		"no snapshot":     {Event: RestoreStarted, Machine: "m-a", Source: "etc"},
		"forged log line": {Event: RestoreStarted, Machine: "m-a", Source: "etc", Snapshot: "s", Path: "x\nlevel=INFO msg=\"restore finished\""},
		"long user":       {Event: RestoreStarted, Machine: "m-a", Source: "etc", Snapshot: "s", User: strings.Repeat("u", 2000)},
		"negative bytes":  {Event: RestoreFinished, Machine: "m-a", Source: "etc", Snapshot: "s", Bytes: -1},
	} {
		if err := LogRestore(ctx, path, bad); err == nil || !strings.Contains(err.Error(), "restore_log") {
			t.Errorf("%s: %v, want a restore_log error", name, err)
		}
	}
	if got := logs.String(); got != before {
		t.Errorf("refused requests were logged:\n%s", strings.TrimPrefix(got, before))
	}
}
