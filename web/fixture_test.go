package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/history"
	"github.com/turku-backup/turku-storage/monitor"
)

// unit is a storage unit's state for handler tests: a real VAR_DIR with
// machines and snapshots laid out as the backup engine lays them out, a
// real attempt history and a real monitor.State, at a fixed time.
type unit struct {
	t       testing.TB
	root    string
	varDir  string
	volume  string
	now     time.Time
	state   *monitor.State
	history *history.Store
	assign  map[string]monitor.Assignment
}

func newUnit(t testing.TB) *unit {
	t.Helper()
	root := t.TempDir()
	u := &unit{t: t, root: root, varDir: filepath.Join(root, "var"), volume: filepath.Join(root, "volume"),
		now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), assign: map[string]monitor.Assignment{}}
	for _, d := range []string{filepath.Join(u.varDir, "machines"), u.volume} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u.state = monitor.New(monitor.Options{Now: func() time.Time { return u.now }})
	u.history = history.New(filepath.Join(u.varDir, history.DirName))
	return u
}

// assigned lists uuid as assigned here since ago, under unit name.
func (u *unit) assigned(uuid, name string, ago time.Duration) {
	u.assign[uuid] = monitor.Assignment{Unit: name, Since: u.now.Add(-ago)}
	u.state.SetAssigned(u.assign)
}

// snapshot writes a snapshot of source on uuid that finished ago and ran
// for took, with its .json figures, and points "latest" at it. The
// machine's UUID link and a name link are made on first use.
func (u *unit) snapshot(uuid, name, source string, ago, took time.Duration, received int64) string {
	t := u.t
	t.Helper()
	mdir := filepath.Join(u.volume, uuid)
	machines := filepath.Join(u.varDir, "machines")
	if _, err := os.Lstat(filepath.Join(machines, uuid)); os.IsNotExist(err) {
		if err := os.Symlink(mdir, filepath.Join(machines, uuid)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(uuid, filepath.Join(machines, "prod-www-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	finish := u.now.Add(-ago)
	snap := source + "_" + finish.Format("20060102-150405") + "_ab12"
	dir := filepath.Join(mdir, source+".snapshots")
	if err := os.MkdirAll(filepath.Join(dir, snap), 0o755); err != nil {
		t.Fatal(err)
	}
	info := fmt.Sprintf(`{"base": null, "bytes_received": %d, "files": 10, "files_transferred": 2, "name": %q, "new_files": 1, `+
		`"sync_begin": %q, "sync_finish": %q, "total_size": %d, "transferred_size": %d}`,
		received, snap, finish.Add(-took).Format(time.RFC3339), finish.Format(time.RFC3339), 10*received, received)
	if err := os.WriteFile(filepath.Join(dir, snap+".json"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "latest"))
	if err := os.Symlink(snap, filepath.Join(dir, "latest")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".usage.json"), []byte(fmt.Sprintf(`{"bytes": %d}`, 10*received)), 0o644); err != nil {
		t.Fatal(err)
	}
	u.state.SeedSource(uuid, name, source, finish)
	return snap
}

// attempt records an attempt of source on uuid that ended ago, in the
// history and in the live state, as the backup engine reports one.
func (u *unit) attempt(uuid, name, source string, ok bool, ago time.Duration, summary string) {
	u.t.Helper()
	end := u.now.Add(-ago)
	if _, err := u.history.Append(uuid, history.Attempt{Source: source, Unit: name, Begin: end.Add(-time.Minute), End: end,
		Success: ok, Summary: summary, BytesReceived: 1000}); err != nil {
		u.t.Fatal(err)
	}
	u.state.BackupFinished(uuid, name, source, ok, end.Add(-time.Minute), end, summary)
}

// server builds the dashboard on the unit with the snapshots read.
func (u *unit) server(opts Options) *Server {
	u.t.Helper()
	opts.Name = "primary"
	opts.State, opts.VarDir, opts.History = u.state, u.varDir, u.history
	opts.Staleness = history.Staleness{MaxAge: 48 * time.Hour, WarnAge: 24 * time.Hour}
	opts.Now = func() time.Time { return u.now }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(opts)
	if err != nil {
		u.t.Fatal(err)
	}
	if err := s.disk.readAll(context.Background()); err != nil {
		u.t.Fatal(err)
	}
	return s
}

// get sends one request to h and returns the response with its body.
func get(t testing.TB, h http.Handler, method, target string, mod ...func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for _, m := range mod {
		m(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}
