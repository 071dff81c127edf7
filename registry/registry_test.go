package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
)

func newRegistrar(t *testing.T, api *apitest.Server, secret string) (*Registrar, string) {
	t.Helper()
	c, err := apiclient.New(apiclient.Options{URL: api.BaseURL(), Storage: apiclient.StorageAuth{Name: "primary", Secret: secret}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "var", CacheFile)
	r := New(Options{
		API:       c,
		Storage:   apiclient.StorageRegistration{SSHPingHost: "h", SSHPingPort: 2222, SSHPingUser: "turku-ping"},
		Space:     func() (int64, int64, error) { return 1000, 400, nil },
		CachePath: path,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) },
	})
	return r, path
}

func TestRefreshWritesCache(t *testing.T) {
	t.Parallel()
	api := apitest.New()
	t.Cleanup(api.Close)
	api.AddStorage("primary", "S")
	api.AddMachine("primary", "u1", apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAA"})
	r, path := newRegistrar(t, api, "S")

	res, err := r.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.SpaceTotal != 1000 || res.SpaceAvailable != 400 || len(res.Machines) != 1 {
		t.Errorf("got %+v", res)
	}
	body := api.Requests("storage_update_config")[0].Body["storage"].(map[string]any)
	if body["space_total"] != float64(1000) || body["ssh_ping_port"] != float64(2222) {
		t.Errorf("sent %v", body)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", info.Mode().Perm())
	}
	c, err := LoadCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res.Machines, c.Machines); diff != "" {
		t.Errorf("cache (-want +got):\n%s", diff)
	}
}

func TestFailedRefreshKeepsCache(t *testing.T) {
	t.Parallel()
	api := apitest.New()
	t.Cleanup(api.Close)
	api.AddStorage("primary", "S")
	api.AddMachine("primary", "u1", apiclient.MachineInfo{UnitName: "web1"})
	good, path := newRegistrar(t, api, "S")
	if _, err := good.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	api.RemoveMachine("u1")
	bad, _ := newRegistrar(t, api, "wrong")
	o := bad.options()
	o.CachePath = path
	bad.Update(o)
	if _, err := bad.Refresh(context.Background()); !errors.Is(err, apiclient.ErrBadAuth) {
		t.Fatalf("got %v, want ErrBadAuth", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("a failed refresh changed the cache")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left %d files in the cache dir, want 1", len(entries))
	}
}

func TestLoadCacheErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LoadCache(filepath.Join(dir, "absent")); !errors.Is(err, ErrNoCache) {
		t.Errorf("absent: got %v", err)
	}
	bad := filepath.Join(dir, "bad")
	_ = os.WriteFile(bad, []byte(`{"version": 7, "machines": {}}`), 0o600)
	if _, err := LoadCache(bad); err == nil {
		t.Error("unknown version accepted")
	}
}

func TestLoopAppliesAndRetries(t *testing.T) {
	t.Parallel()
	api := apitest.New()
	t.Cleanup(api.Close)
	api.AddStorage("primary", "S")
	r, _ := newRegistrar(t, api, "S")
	api.FailNext(1)

	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{})
	applied := make(chan *Result)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Loop(ctx, time.Hour, kick, func(res *Result) { applied <- res })
	}()
	// The first call fails (500); a kick retries at once instead of
	// waiting for the backoff, and the success is applied.
	kick <- struct{}{}
	res := <-applied
	if res.SpaceTotal != 1000 {
		t.Errorf("got %+v", res)
	}
	cancel()
	<-done
	if n := len(api.Requests("storage_update_config")); n != 2 {
		t.Errorf("got %d calls, want 2", n)
	}
}
