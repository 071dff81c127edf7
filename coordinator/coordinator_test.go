package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/testclock"
)

// testArgon2 keeps hashing cheap in tests; real parameters are exercised
// in secret_test.go.
var testArgon2 = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

const (
	storageName   = "primary"
	storageSecret = "storage-secret"
	regSecret     = "registration-secret"
	// UUIDs as agents make them (uuid4), which pass turku-api's entropy check.
	machineUUID = "9b2d7c1e-4f3a-4e8b-a6d5-3c7e1f9a2b4d"
	otherUUID   = "c4e8a1f2-7b3d-4a6e-9f1c-2d5b8e7a3c6f"
	machineKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDT7aGVsbG8 agent@web1"
	hostKey     = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0b3JhZ2U storage"
)

type fixture struct {
	c     *Coordinator
	h     http.Handler
	clock *testclock.Clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := testclock.New(time.Date(2026, 11, 25, 14, 30, 45, 0, time.UTC))
	c, err := New(Options{
		DBPath: filepath.Join(t.TempDir(), "coordinator.db"),
		Now:    clk.Now,
		Storage: StorageIdentity{Name: storageName, Secret: storageSecret, SSHPingHost: "primary.example.com",
			SSHPingPort: 2222, SSHPingUser: "turku-ping", SSHPingHostKeys: []string{hostKey}},
		RegistrationSecret: regSecret,
		Argon2:             testArgon2,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &fixture{c: c, h: c.InProcessHandler(), clock: clk}
}

// post sends body (marshalled unless it is a string) to path and returns the
// status and body text.
func (f *fixture) post(t *testing.T, path string, body any) (int, string) {
	t.Helper()
	var b []byte
	if s, ok := body.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// call posts and requires a 200, returning the decoded JSON.
func (f *fixture) call(t *testing.T, path string, body any) any {
	t.Helper()
	code, text := f.post(t, path, body)
	if code != http.StatusOK {
		t.Fatalf("POST %s: %d %q, want 200", path, code, text)
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("POST %s: bad JSON %q: %v", path, text, err)
	}
	return v
}

type obj = map[string]any

func regAuth() obj { return obj{"name": RegistrationAuthName, "secret": regSecret} }

func storageAuth() obj { return obj{"name": storageName, "secret": storageSecret} }

func machineLogin() obj { return obj{"uuid": machineUUID, "secret": "machine-secret"} }

// agentConfig is an update_config body as turku-agent sends it.
func agentConfig(sources obj) obj {
	return obj{
		"machine": obj{
			"uuid": machineUUID, "secret": "machine-secret", "environment_name": "prod",
			"service_name": "web", "unit_name": "web1", "ssh_public_key": machineKey,
			"sources": sources,
		},
		"auth": regAuth(),
	}
}

var etcSource = obj{"path": "/etc", "frequency": "daily", "retention": "last 5 days, earliest of month",
	"filter": []string{"- *.tmp", "merge common", "nospace"}, "exclude": []string{"cache/"},
	"preserve_hard_links": true}

func (f *fixture) register(t *testing.T, sources obj) {
	t.Helper()
	if got := f.call(t, "/v1/update_config", agentConfig(sources)); !cmp.Equal(got, obj{}) {
		t.Fatalf("update_config = %v, want {}", got)
	}
}

// newRegistered is newFixture with machine web1 registered, backing up
// its etc source.
func newRegistered(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.register(t, obj{"etc": etcSource})
	return f
}

func TestTransport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantCode    int
		wantBody    string
	}{
		{"get", http.MethodGet, "/v1/health", "application/json", "", 405, ""},
		{"no content type", http.MethodPost, "/v1/health", "", "{}", 400, "Bad Content-Type (expected application/json)"},
		{"charset", http.MethodPost, "/v1/health", "application/json; charset=utf-8", "{}", 400, "Bad Content-Type (expected application/json)"},
		{"form", http.MethodPost, "/v1/update_config", "application/x-www-form-urlencoded", "a=b", 400, "Bad Content-Type (expected application/json)"},
		{"unknown call", http.MethodPost, "/v1/nope", "application/json", "{}", 404, "Not found"},
		{"bad json", http.MethodPost, "/v1/update_config", "application/json", "{", 400, "invalid JSON: unexpected EOF"},
		{"not an object", http.MethodPost, "/v1/update_config", "application/json", "[]", 400, "invalid JSON: expected an object"},
		{"trailing data", http.MethodPost, "/v1/update_config", "application/json", "{} {}", 400, "invalid JSON: extra data after the object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader([]byte(tc.body)))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
			if tc.wantCode == 405 && rec.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := newRegistered(t)
	// Both spellings of the path work.
	for _, path := range []string{"/v1/health", "/health"} {
		got := f.call(t, path, obj{})
		want := obj{"healthy": true, "date": "2026-11-25T14:30:45+00:00", "counts": obj{
			"auth": 2.0, "storage": 1.0, "machine": 1.0, "source": 1.0, "filter_set": 0.0, "backup_log": 0.0}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
	}
}

func TestRegistration(t *testing.T) {
	t.Parallel()
	valid := func(mod func(m, req obj)) obj {
		req := agentConfig(obj{"etc": etcSource})
		mod(req["machine"].(obj), req)
		return req
	}
	tests := []struct {
		name     string
		body     any
		wantCode int
		wantBody string
	}{
		{"valid auth", valid(func(m, r obj) {}), 200, "{}"},
		{"no auth", valid(func(m, r obj) { delete(r, "auth") }), 403, "Bad auth"},
		{"wrong auth secret", valid(func(m, r obj) { r["auth"] = obj{"name": RegistrationAuthName, "secret": "nope"} }), 403, "Bad auth"},
		{"unknown auth name", valid(func(m, r obj) { r["auth"] = obj{"name": "Other", "secret": regSecret} }), 403, "Bad auth"},
		{"auth as string", valid(func(m, r obj) { r["auth"] = regSecret }), 403, "Bad auth"},
		{"missing uuid", valid(func(m, r obj) { delete(m, "uuid") }), 400, `Missing required machine option "uuid"`},
		{"missing secret", valid(func(m, r obj) { delete(m, "secret") }), 400, `Missing required machine option "secret"`},
		{"machine not a dict", obj{"machine": "web1", "auth": regAuth()}, 400, `"machine" dict required`},
		{"bad uuid", valid(func(m, r obj) { m["uuid"] = "web1" }), 400, "Invalid machine UUID"},
		{"made-up uuid", valid(func(m, r obj) { m["uuid"] = "00000000-0000-4000-8000-000000000000" }), 400,
			"Validation error: {'uuid': ['Invalid UUID format']}"},
		{"no unit name", valid(func(m, r obj) { delete(m, "unit_name") }), 400,
			"Validation error: {'unit_name': ['This field cannot be blank.']}"},
		{"no ssh key", valid(func(m, r obj) { delete(m, "ssh_public_key") }), 400,
			"Validation error: {'ssh_public_key': ['This field cannot be blank.']}"},
		{"null unit name", valid(func(m, r obj) { m["unit_name"] = nil }), 400,
			"Validation error: {'unit_name': ['This field cannot be null.']}"},
		{"bad published", valid(func(m, r obj) { m["published"] = "maybe" }), 400,
			"Validation error: {'published': ['“maybe” value must be either True or False.']}"},
		{"sources not a dict", valid(func(m, r obj) { m["sources"] = []string{"etc"} }), 400, `Invalid type for "sources"`},
		{"source without path", valid(func(m, r obj) { m["sources"] = obj{"etc": obj{"frequency": "daily"}} }), 400,
			"Validation error: {'path': ['This field cannot be blank.']}"},
		{"bad snapshot mode", valid(func(m, r obj) { m["sources"] = obj{"etc": obj{"path": "/etc", "snapshot_mode": "zfs"}} }), 400,
			"Validation error: {'snapshot_mode': [\"Value 'zfs' is not a valid choice.\"]}"},
		{"bad filter", valid(func(m, r obj) { m["sources"] = obj{"etc": obj{"path": "/etc", "filter": "- x"}} }), 400,
			"Validation error: {'filter': ['Must be a valid JSON string list']}"},
		{"source name blank", valid(func(m, r obj) { m["sources"] = obj{"": obj{"path": "/etc"}} }), 400,
			"Validation error: {'name': ['This field cannot be blank.']}"},
		{"source name too long", valid(func(m, r obj) { m["sources"] = obj{strings.Repeat("é", 201): obj{"path": "/etc"}} }), 400,
			"Validation error: {'name': ['Ensure this value has at most 200 characters (it has 201).']}"},
		{"bad frequency window", valid(func(m, r obj) { m["sources"] = obj{"etc": obj{"path": "/etc", "frequency": "daily, ab"}} }), 400,
			`Validation error: {'frequency': ['time window "ab": start: hours: "ab" is not a number']}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			code, body := f.post(t, "/v1/update_config", tc.body)
			if code != tc.wantCode || body != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
			machines, err := f.c.Store().ListMachines(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[code == 200]; len(machines) != want {
				t.Errorf("%d machines registered, want %d (a refused registration saves nothing)", len(machines), want)
			}
		})
	}
}

func TestKnownMachine(t *testing.T) {
	t.Parallel()
	f := newRegistered(t)

	// A known machine needs no registration auth, but its own secret.
	req := agentConfig(obj{"etc": etcSource})
	delete(req, "auth")
	if code, body := f.post(t, "/v1/update_config", req); code != 200 || body != "{}" {
		t.Errorf("refresh without auth: %d %q, want 200 {}", code, body)
	}
	req["machine"].(obj)["secret"] = "wrong"
	if code, body := f.post(t, "/v1/update_config", req); code != 403 || body != "Bad auth" {
		t.Errorf("wrong secret: %d %q, want 403 Bad auth", code, body)
	}
	// Even with a valid registration auth, a wrong secret is refused.
	req["auth"] = regAuth()
	if code, body := f.post(t, "/v1/update_config", req); code != 403 || body != "Bad auth" {
		t.Errorf("wrong secret with auth: %d %q, want 403 Bad auth", code, body)
	}
	for _, path := range []string{"/v1/agent_ping_checkin", "/v1/agent_ping_restore"} {
		code, body := f.post(t, path, obj{"machine": obj{"uuid": machineUUID, "secret": "wrong"}})
		if code != 403 || body != "Bad auth" {
			t.Errorf("%s wrong secret: %d %q, want 403 Bad auth", path, code, body)
		}
		code, body = f.post(t, path, obj{"machine": obj{"uuid": otherUUID, "secret": "machine-secret"}})
		if code != 403 || body != "Bad auth" {
			t.Errorf("%s unknown machine: %d %q, want 403 Bad auth", path, code, body)
		}
		code, body = f.post(t, path, obj{"machine": obj{"uuid": machineUUID}})
		if code != 400 || body != `Missing required machine option "secret"` {
			t.Errorf("%s without secret: %d %q, want 400", path, code, body)
		}
	}
}

// wantEtc is the etc source as agents and the storage unit get it.
func wantEtc() obj {
	return obj{
		"path": "/etc", "retention": "last 5 days, earliest of month", "bwlimit": nil,
		// "merge common" names a FilterSet we do not have; "nospace" is
		// not a rule: both dropped, as turku-api's build_filters does.
		"filter": []any{"- *.tmp"}, "exclude": []any{"cache/"},
		"shared_service": false, "large_rotating_files": false, "large_modifying_files": false,
		"snapshot_mode": nil, "preserve_hard_links": true,
		"storage": obj{"name": storageName, "ssh_ping_host": "primary.example.com",
			"ssh_ping_host_keys": []any{hostKey}, "ssh_ping_port": 2222.0, "ssh_ping_user": "turku-ping"},
	}
}

func TestBackupCycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	st := f.c.Store()
	f.register(t, obj{"etc": etcSource, "home": obj{"path": "/home", "frequency": "hourly"}})
	checkin := obj{"machine": machineLogin()}

	// New sources are first due at their scheduled time, not now.
	got := f.call(t, "/v1/agent_ping_checkin", checkin)
	if diff := cmp.Diff(obj{"machine": obj{"scheduled_sources": obj{}}}, got); diff != "" {
		t.Errorf("checkin right after registration (-want +got):\n%s", diff)
	}

	if err := st.RunNow(ctx, "web1", "etc"); err != nil {
		t.Fatalf("RunNow: %v", err)
	}
	got = f.call(t, "/v1/agent_ping_checkin", checkin)
	if diff := cmp.Diff(obj{"machine": obj{"scheduled_sources": obj{"etc": wantEtc()}}}, got); diff != "" {
		t.Errorf("agent checkin (-want +got):\n%s", diff)
	}
	got = f.call(t, "/v1/storage_ping_checkin", obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID}})
	want := obj{"machine": obj{"uuid": machineUUID, "environment_name": "prod", "service_name": "web",
		"unit_name": "web1", "scheduled_sources": obj{"etc": wantEtc()}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("storage checkin (-want +got):\n%s", diff)
	}

	// A successful report moves the source forward from the report time.
	f.clock.Add(10 * time.Minute)
	reportTime := f.clock.Now()
	report := func(success bool) obj {
		return obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID, "sources": obj{"etc": obj{
			"success": success, "snapshot": "etc_20261125-144045_ab12", "summary": "Done\n",
			"time_begin": 1764081600.25, "time_end": 1764081645.5}}}}
	}
	if got := f.call(t, "/v1/storage_ping_source_update", report(true)); !cmp.Equal(got, obj{}) {
		t.Errorf("source update = %v, want {}", got)
	}
	got = f.call(t, "/v1/agent_ping_checkin", checkin)
	if diff := cmp.Diff(obj{"machine": obj{"scheduled_sources": obj{}}}, got); diff != "" {
		t.Errorf("checkin after success (-want +got):\n%s", diff)
	}
	sources, err := st.ListSources(ctx, machineUUID)
	if err != nil {
		t.Fatal(err)
	}
	etc := sources[0]
	if etc.Name != "etc" || !etc.LastBackedUp.Equal(reportTime) || !etc.NextBackup.After(reportTime.Add(9*time.Hour)) {
		t.Errorf("etc after success = %+v; want last backed up at %v and next due tomorrow", etc, reportTime)
	}
	logs, err := st.Logs(ctx, "web1", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantLogs := []BackupLog{{Machine: machineUUID, UnitName: "web1", Source: "etc", Storage: storageName,
		Date: reportTime, Success: true, Begin: time.Date(2025, 11, 25, 14, 40, 0, 250_000_000, time.UTC),
		End: time.Date(2025, 11, 25, 14, 40, 45, 500_000_000, time.UTC), Snapshot: "etc_20261125-144045_ab12",
		Summary: "Done\n"}}
	if diff := cmp.Diff(wantLogs, logs); diff != "" {
		t.Errorf("logs (-want +got):\n%s", diff)
	}

	// After a failure the source stays due.
	if err := st.RunNow(ctx, machineUUID, "etc"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	f.call(t, "/v1/storage_ping_source_update", report(false))
	got = f.call(t, "/v1/agent_ping_checkin", checkin)
	if diff := cmp.Diff(obj{"machine": obj{"scheduled_sources": obj{"etc": wantEtc()}}}, got); diff != "" {
		t.Errorf("checkin after failure (-want +got):\n%s", diff)
	}
	logs, err = st.Logs(ctx, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 1 || logs[0].Success || !logs[0].Date.Equal(f.clock.Now()) {
		t.Errorf("newest log = %+v, want one failure at %v", logs, f.clock.Now())
	}
	sources, err = st.ListSources(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if sources[0].Success || !sources[0].LastBackedUp.Equal(reportTime) {
		t.Errorf("etc after failure = %+v, want success false, last backed up unchanged", sources[0])
	}

	// A report for an unknown source.
	code, body := f.post(t, "/v1/storage_ping_source_update", obj{"storage": storageAuth(),
		"machine": obj{"uuid": machineUUID, "sources": obj{"nope": obj{"success": true}}}})
	if code != 404 || body != "Source not found" {
		t.Errorf("unknown source: %d %q, want 404 Source not found", code, body)
	}
	code, body = f.post(t, "/v1/storage_ping_source_update", obj{"storage": storageAuth(),
		"machine": obj{"uuid": machineUUID}})
	if code != 400 || body != `Missing required option "machine.sources"` {
		t.Errorf("no sources: %d %q, want 400", code, body)
	}
}

func TestHourlySchedule(t *testing.T) {
	t.Parallel()
	// The next due time after a success is the frequency applied to the
	// report time in the source's own hash slot: for "hourly" that is the
	// next hour at minute = second = h(0,59).
	ctx := context.Background()
	f := newFixture(t)
	f.register(t, obj{"home": obj{"path": "/home", "frequency": "hourly"}})
	if err := f.c.Store().RunNow(ctx, "web1", ""); err != nil {
		t.Fatal(err)
	}
	f.call(t, "/v1/storage_ping_source_update", obj{"storage": storageAuth(),
		"machine": obj{"uuid": machineUUID, "sources": obj{"home": obj{"success": true}}}})
	sources, err := f.c.Store().ListSources(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	next := sources[0].NextBackup
	if next.Hour() != 15 || next.Minute() != next.Second() || next.Day() != 25 {
		t.Errorf("next = %v, want 2026-11-25 15:MM:MM with minute == second", next)
	}
}

func TestSourcesUnpublished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	f.register(t, obj{"etc": etcSource, "home": obj{"path": "/home"}})
	f.register(t, obj{"etc": etcSource})
	sources, err := f.c.Store().ListSources(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range sources {
		got[s.Name] = s.Published
	}
	if diff := cmp.Diff(map[string]bool{"etc": true, "home": false}, got); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}

	// An unpublished source is never due, but restore still lists it
	// (turku-api lists every active source for restore).
	if err := f.c.Store().RunNow(ctx, "web1", ""); err != nil {
		t.Fatal(err)
	}
	checkin := f.call(t, "/v1/agent_ping_checkin", obj{"machine": machineLogin()})
	if diff := cmp.Diff(obj{"machine": obj{"scheduled_sources": obj{"etc": wantEtc()}}}, checkin); diff != "" {
		t.Errorf("checkin (-want +got):\n%s", diff)
	}
	restore := f.call(t, "/v1/agent_ping_restore", obj{"machine": machineLogin()})
	home := obj{"path": "/home", "retention": "last 5 days, earliest of month", "bwlimit": nil,
		"filter": []any{}, "exclude": []any{}, "shared_service": false, "large_rotating_files": false,
		"large_modifying_files": false, "snapshot_mode": nil, "preserve_hard_links": false,
		"storage": wantEtc()["storage"]}
	if diff := cmp.Diff(obj{"machine": obj{"sources": obj{"etc": wantEtc(), "home": home}}}, restore); diff != "" {
		t.Errorf("restore (-want +got):\n%s", diff)
	}

	// Publishing it again brings it back.
	f.register(t, obj{"etc": etcSource, "home": obj{"path": "/home"}})
	sources, err = f.c.Store().ListSources(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sources {
		if !s.Published {
			t.Errorf("source %s still unpublished", s.Name)
		}
	}
}

func TestDisabledMachine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newRegistered(t)
	st := f.c.Store()
	if err := st.SetMachineActive(ctx, machineUUID, false); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if code, body := f.post(t, "/v1/agent_ping_checkin", obj{"machine": machineLogin()}); code != 403 || body != "Bad auth" {
		t.Errorf("checkin: %d %q, want 403 Bad auth", code, body)
	}
	if code, body := f.post(t, "/v1/storage_ping_checkin", obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID}}); code != 404 || body != "Machine not found" {
		t.Errorf("storage checkin: %d %q, want 404 Machine not found", code, body)
	}
	got := f.call(t, "/v1/storage_update_config", obj{"storage": storageAuth()})
	if diff := cmp.Diff(obj{"machines": obj{}}, got); diff != "" {
		t.Errorf("storage_update_config lists a disabled machine (-want +got):\n%s", diff)
	}
	// It cannot register again under the same UUID (turku-api: the UUID
	// is taken), nor refresh without auth.
	req := agentConfig(obj{"etc": etcSource})
	if code, body := f.post(t, "/v1/update_config", req); code != 400 || body != "Validation error: {'uuid': ['Machine with this UUID already exists.']}" {
		t.Errorf("re-register: %d %q", code, body)
	}
	delete(req, "auth")
	if code, body := f.post(t, "/v1/update_config", req); code != 403 || body != "Bad auth" {
		t.Errorf("refresh: %d %q, want 403 Bad auth", code, body)
	}

	if err := st.SetMachineActive(ctx, "web1", true); err != nil {
		t.Fatalf("enable: %v", err)
	}
	f.call(t, "/v1/agent_ping_checkin", obj{"machine": machineLogin()})
}

func TestUnpublishedMachine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req := agentConfig(obj{"etc": etcSource})
	req["machine"].(obj)["published"] = false
	f.call(t, "/v1/update_config", req)
	if code, body := f.post(t, "/v1/agent_ping_checkin", obj{"machine": machineLogin()}); code != 403 || body != "Bad auth" {
		t.Errorf("checkin of unpublished machine: %d %q, want 403 Bad auth", code, body)
	}
	// Leaving "published" out publishes it again.
	f.register(t, obj{"etc": etcSource})
	f.call(t, "/v1/agent_ping_checkin", obj{"machine": machineLogin()})
}

func TestStorageCalls(t *testing.T) {
	t.Parallel()
	f := newRegistered(t)
	wrong := obj{"name": storageName, "secret": "wrong"}
	tests := []struct {
		name     string
		path     string
		body     any
		wantCode int
		wantBody string
	}{
		{"update wrong secret", "/v1/storage_update_config", obj{"storage": wrong}, 403, "Bad auth"},
		{"checkin wrong secret", "/v1/storage_ping_checkin", obj{"storage": wrong, "machine": obj{"uuid": machineUUID}}, 403, "Bad auth"},
		{"source update wrong secret", "/v1/storage_ping_source_update", obj{"storage": wrong,
			"machine": obj{"uuid": machineUUID, "sources": obj{}}}, 403, "Bad auth"},
		{"no storage", "/v1/storage_ping_checkin", obj{"machine": obj{"uuid": machineUUID}}, 400, `Missing required option "storage"`},
		{"storage without secret", "/v1/storage_ping_checkin", obj{"storage": obj{"name": storageName}}, 403, "Bad auth"},
		{"unknown storage", "/v1/storage_ping_checkin", obj{"storage": obj{"name": "other", "secret": "x"}}, 403, "Bad auth"},
		{"no machine", "/v1/storage_ping_checkin", obj{"storage": storageAuth()}, 400, `Missing required option "machine"`},
		{"no uuid", "/v1/storage_ping_checkin", obj{"storage": storageAuth(), "machine": obj{}}, 400, `Missing required option "machine.uuid"`},
		{"unknown machine", "/v1/storage_ping_checkin", obj{"storage": storageAuth(), "machine": obj{"uuid": otherUUID}}, 404, "Machine not found"},
		{"register without auth", "/v1/storage_update_config", obj{"storage": obj{"name": "other", "secret": "s2",
			"ssh_ping_host": "other.example.com", "ssh_ping_port": 22, "ssh_ping_user": "root"}}, 403, "Bad auth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.post(t, tc.path, tc.body)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}

	// The local storage unit refreshes its record and gets its machines.
	got := f.call(t, "/v1/storage_update_config", obj{"storage": obj{"name": storageName, "secret": storageSecret,
		"ssh_ping_host": "primary.example.com", "ssh_ping_port": 2222, "ssh_ping_user": "turku-ping",
		"ssh_ping_host_keys": []string{hostKey}, "space_total": 953674, "space_available": 512000},
		"auth": obj{"name": "Storage Registrations", "secret": "ignored for a known storage"}})
	want := obj{"machines": obj{machineUUID: obj{"environment_name": "prod", "service_name": "web",
		"unit_name": "web1", "comment": nil, "ssh_public_key": machineKey}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("storage_update_config (-want +got):\n%s", diff)
	}

	// Another storage unit registers with a storage registration auth; a
	// machine that is not on it is not found through it.
	secret, err := f.c.Store().CreateRegistrationAuth(context.Background(), "storage", "")
	if err != nil {
		t.Fatal(err)
	}
	other := obj{"name": "other", "secret": "s2"}
	got = f.call(t, "/v1/storage_update_config", obj{"storage": obj{"name": "other", "secret": "s2",
		"ssh_ping_host": "other.example.com", "ssh_ping_port": 22, "ssh_ping_user": "root"},
		"auth": obj{"name": "Storage Registrations", "secret": secret}})
	if diff := cmp.Diff(obj{"machines": obj{}}, got); diff != "" {
		t.Errorf("registration of another storage (-want +got):\n%s", diff)
	}
	if code, body := f.post(t, "/v1/storage_ping_checkin", obj{"storage": other, "machine": obj{"uuid": machineUUID}}); code != 404 || body != "Machine not found" {
		t.Errorf("checkin via another storage: %d %q, want 404 Machine not found", code, body)
	}
	code, body := f.post(t, "/v1/storage_update_config", obj{"storage": obj{"name": "third", "secret": "s3"},
		"auth": obj{"name": "Storage Registrations", "secret": secret}})
	wantBody := "Validation error: {'ssh_ping_host': ['This field cannot be blank.'], " +
		"'ssh_ping_port': ['This field cannot be null.'], 'ssh_ping_user': ['This field cannot be blank.']}"
	if code != 400 || body != wantBody {
		t.Errorf("incomplete registration: %d %q, want 400 %q", code, body, wantBody)
	}
}

// TestStorageRegistrationValidation: a new storage unit's name is checked
// like turku-api's model: required and at most 200 characters before the
// other fields, then unique among active and disabled storage units
// (full_clean checks uniqueness after the fields).
func TestStorageRegistrationValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	secret, err := f.c.Store().CreateRegistrationAuth(context.Background(), "storage", "")
	if err != nil {
		t.Fatal(err)
	}
	register := func(name string) (int, string) {
		return f.post(t, "/v1/storage_update_config", obj{"storage": obj{"name": name, "secret": "s2",
			"ssh_ping_host": "other.example.com", "ssh_ping_user": "root", "ssh_ping_port": 70000},
			"auth": obj{"name": "Storage Registrations", "secret": secret}})
	}
	const badPort = "'ssh_ping_port': ['Ensure this value is less than or equal to 65535.']"
	long := strings.Repeat("é", 201)
	if code, body := register(long); code != 400 ||
		body != "Validation error: {'name': ['Ensure this value has at most 200 characters (it has 201).'], "+badPort+"}" {
		t.Errorf("name too long: %d %q", code, body)
	}
	if code, body := register(""); code != 400 ||
		body != "Validation error: {'name': ['This field cannot be blank.'], "+badPort+"}" {
		t.Errorf("blank name: %d %q", code, body)
	}
	// The local storage unit, disabled, registering again: its name is taken.
	if _, err := f.c.store.db.Exec(`UPDATE storages SET active = 0 WHERE name = ?`, storageName); err != nil {
		t.Fatal(err)
	}
	if code, body := register(storageName); code != 400 ||
		body != "Validation error: {"+badPort+", 'name': ['Storage with this Name already exists.']}" {
		t.Errorf("disabled storage registering again: %d %q", code, body)
	}
}

func TestNoStorageAvailable(t *testing.T) {
	t.Parallel()
	// When the local storage unit withdraws itself (published: false), new
	// machines cannot be placed, as in turku-api with no storage.
	f := newFixture(t)
	f.call(t, "/v1/storage_update_config", obj{"storage": obj{"name": storageName, "secret": storageSecret, "published": false}})
	code, body := f.post(t, "/v1/update_config", agentConfig(obj{}))
	if code != 404 || body != "No storages are currently available" {
		t.Errorf("got %d %q, want 404 No storages are currently available", code, body)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{DBPath: filepath.Join(dir, "c.db"), Argon2: testArgon2,
		Storage:            StorageIdentity{Name: storageName, Secret: storageSecret, SSHPingHost: "a"},
		RegistrationSecret: regSecret}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := (&fixture{c: c, h: c.InProcessHandler()})
	h.register(t, obj{"etc": etcSource})
	c.Close()

	// A new storage secret and registration secret in the config take
	// effect; the old ones stop working.
	opts.Storage.Secret, opts.RegistrationSecret, opts.Storage.SSHPingHost = "new-secret", "new-reg", "b"
	c, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := &fixture{c: c, h: c.InProcessHandler()}
	if code, _ := f.post(t, "/v1/storage_update_config", obj{"storage": storageAuth()}); code != 403 {
		t.Errorf("old storage secret: %d, want 403", code)
	}
	got := f.call(t, "/v1/storage_update_config", obj{"storage": obj{"name": storageName, "secret": "new-secret"}})
	if m := got.(obj)["machines"].(obj); len(m) != 1 {
		t.Errorf("machines after restart = %v, want web1", m)
	}
	machines, err := c.Store().ListMachines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(machines) != 1 || machines[0].Sources != 1 || machines[0].Storage != storageName {
		t.Errorf("machines = %+v", machines)
	}
	req := agentConfig(obj{})
	req["machine"].(obj)["uuid"] = otherUUID
	if code, body := f.post(t, "/v1/update_config", req); code != 403 || body != "Bad auth" {
		t.Errorf("old registration secret: %d %q, want 403", code, body)
	}
	req["auth"] = obj{"name": RegistrationAuthName, "secret": "new-reg"}
	f.call(t, "/v1/update_config", req)
}

func FuzzUpdateConfig(f *testing.F) {
	seed, _ := json.Marshal(agentConfig(obj{"etc": etcSource}))
	f.Add(string(seed))
	f.Add(`{"machine": {"uuid": "` + machineUUID + `", "secret": 1, "sources": {"a": {"path": 5, "frequency": "cron H H * * *"}}}, "auth": {"name": "Machine Registrations", "secret": "registration-secret"}}`)
	f.Add(`{"machine": {"uuid": null, "secret": null}}`)
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/update_config", bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError {
			t.Errorf("update_config %q: 500 %q", body, rec.Body.String())
		}
	})
}
