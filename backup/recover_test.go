package backup

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestPullSourcePanic: a panic while backing up one source fails that
// source, with a report, and the next source still runs; the stack goes
// to the storage log.
func TestPullSourcePanic(t *testing.T) {
	rec := t.TempDir()
	var logs syncBuffer
	env := newTestEnv(t, map[string]apiclient.Source{"a": {}, "b": {}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
		o.MaxConcurrent = 1
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	var calls atomic.Int64
	env.e.randHex = func() string {
		if calls.Add(1) == 1 {
			panic("injected by test")
		}
		return "beef"
	}
	err := env.e.Pull(t.Context(), env.request(creds("a", "b")))
	if err == nil || !strings.Contains(err.Error(), "sources not backed up: a") {
		t.Fatalf("got %v, want source a failed", err)
	}
	var got []string
	for _, r := range env.api.got() {
		got = append(got, fmt.Sprintf("%s=%v", r.Source, r.Report.Success))
		if r.Source == "a" && !strings.Contains(r.Report.Summary, "panic") {
			t.Errorf("report summary of a %q does not say it panicked", r.Report.Summary)
		}
	}
	if diff := cmp.Diff([]string{"a=false", "b=true"}, got); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if !strings.Contains(env.agent.String(), "ERROR: Source a: storage error") {
		t.Errorf("agent not told: %q", env.agent.String())
	}
	if s := logs.String(); !strings.Contains(s, "injected by test") || !strings.Contains(s, "goroutine ") {
		t.Errorf("no panic with stack in the log: %s", s)
	}
}
