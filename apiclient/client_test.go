package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
)

func newFake(t *testing.T) *apitest.Server {
	t.Helper()
	s := apitest.New()
	t.Cleanup(s.Close)
	return s
}

func TestUpdateConfigRegistration(t *testing.T) {
	api := newFake(t)
	api.AddRegistrationAuth("Storage Registrations", "R")
	api.AddMachine("primary", "u1", apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAA x"})
	api.AddMachine("other", "u2", apiclient.MachineInfo{UnitName: "db1"})
	ctx := context.Background()

	c := mustClient(t, apiclient.Options{URL: api.BaseURL(), Storage: apiclient.StorageAuth{Name: "primary", Secret: "S"}})
	req := apiclient.UpdateConfigRequest{Storage: apiclient.StorageRegistration{SSHPingHost: "primary.example.com",
		SSHPingPort: 22, SSHPingUser: "root", SpaceTotal: 10, SpaceAvailable: 5}}

	_, err := c.UpdateConfig(ctx, req)
	if !errors.Is(err, apiclient.ErrBadAuth) || !strings.Contains(err.Error(), "Bad auth") {
		t.Fatalf("unregistered without auth: got %v, want Bad auth", err)
	}
	req.Auth = apiclient.RegistrationAuth{Name: "Storage Registrations", Secret: "R"}
	resp, err := c.UpdateConfig(ctx, req)
	if err != nil {
		t.Fatalf("registration: %v", err)
	}
	want := map[string]apiclient.MachineInfo{"u1": {UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAA x"}}
	if diff := cmp.Diff(want, resp.Machines); diff != "" {
		t.Errorf("machines (-want +got):\n%s", diff)
	}
	req.Auth = nil
	if _, err := c.UpdateConfig(ctx, req); err != nil {
		t.Fatalf("refresh without auth: %v", err)
	}
	wrong := mustClient(t, apiclient.Options{URL: api.BaseURL(), Storage: apiclient.StorageAuth{Name: "primary", Secret: "nope"}})
	if _, err := wrong.UpdateConfig(ctx, req); !errors.Is(err, apiclient.ErrBadAuth) {
		t.Fatalf("wrong secret: got %v, want ErrBadAuth", err)
	}

	// The wire body carries exactly the fields of docs/protocol.md §3.1.
	got := api.Requests("storage_update_config")[1].Body
	st := got["storage"].(map[string]any)
	for _, k := range []string{"name", "secret", "ssh_ping_host", "ssh_ping_port", "ssh_ping_user", "ssh_ping_host_keys", "space_total", "space_available"} {
		if _, ok := st[k]; !ok {
			t.Errorf("storage_update_config body lacks storage.%s", k)
		}
	}
	if _, ok := st["published"]; ok {
		t.Error("published sent although not configured")
	}
	if a := got["auth"].(map[string]any); a["name"] != "Storage Registrations" {
		t.Errorf("auth = %v", a)
	}
}

func TestCheckinAndReport(t *testing.T) {
	api := newFake(t)
	api.AddStorage("primary", "S")
	api.AddMachine("primary", "u1", apiclient.MachineInfo{UnitName: "web1"})
	api.AddSource("u1", "etc", apiclient.Source{Path: "/etc", Retention: "last 5 days", Filter: []string{"- *.tmp"}})
	c := mustClient(t, apiclient.Options{URL: api.BaseURL() + "/", Storage: apiclient.StorageAuth{Name: "primary", Secret: "S"}})
	ctx := context.Background()

	resp, err := c.PingCheckin(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Machine.ScheduledSources["etc"].Filter; !cmp.Equal(got, []string{"- *.tmp"}) {
		t.Errorf("got filter %q", got)
	}
	if resp.Machine.UnitName != "web1" {
		t.Errorf("got unit %q", resp.Machine.UnitName)
	}
	_, err = c.PingCheckin(ctx, "u-unknown")
	var apiErr *apiclient.Error
	if !errors.Is(err, apiclient.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Body != "Machine not found" {
		t.Fatalf("unknown machine: got %v", err)
	}
	err = c.SourceUpdate(ctx, "u1", "nosuch", apiclient.SourceReport{Success: true})
	if !errors.Is(err, apiclient.ErrNotFound) || !strings.Contains(err.Error(), "Source not found") {
		t.Fatalf("unknown source: got %v", err)
	}
	rep := apiclient.SourceReport{Success: true, Snapshot: "etc_20261125-031500_ab12", Summary: "ok\n", TimeBegin: 1.5, TimeEnd: 2.25}
	if err := c.SourceUpdate(ctx, "u1", "etc", rep); err != nil {
		t.Fatal(err)
	}
	if api.Due("u1", "etc") {
		t.Error("source still due after a successful report")
	}
	reports := api.Reports()
	if diff := cmp.Diff([]apitest.Report{{Machine: "u1", Source: "etc", SourceReport: rep}}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

func TestTransportErrors(t *testing.T) {
	api := newFake(t)
	api.AddStorage("primary", "S")
	ctx := context.Background()

	// A GET is refused with 405, and a charset in the content type with
	// 400, exactly as turku-api does: our client must send neither.
	for _, tc := range []struct {
		method, ctype string
		want          int
	}{
		{http.MethodGet, "application/json", http.StatusMethodNotAllowed},
		{http.MethodPost, "application/json; charset=utf-8", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, api.BaseURL()+"/health", strings.NewReader("{}"))
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %q: got %d, want %d", tc.method, tc.ctype, resp.StatusCode, tc.want)
		}
	}
	c := mustClient(t, apiclient.Options{URL: api.BaseURL(), Storage: apiclient.StorageAuth{Name: "primary", Secret: "S"}})
	if h, err := c.Health(ctx); err != nil || !h.Healthy {
		t.Fatalf("health: %v %v", h, err)
	}

	// Unreachable: a closed loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dead := mustClient(t, apiclient.Options{URL: "http://" + addr + "/v1", Timeout: 2 * time.Second})
	if _, err := dead.Health(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unreachable: got %v", err)
	}

	api.FailNext(1)
	_, err = c.Health(ctx)
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 500 {
		t.Fatalf("500: got %v", err)
	}
}

func TestFlexString(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: `null`, want: ""},
		{in: `"1m"`, want: "1m"},
		{in: `512`, want: "512"},
		{in: `1.5`, want: "1.5"},
		{in: `true`, wantErr: true},
		{in: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var s apiclient.Source
			err := json.Unmarshal([]byte(`{"bwlimit": `+tt.in+`}`), &s)
			if tt.wantErr != (err != nil) {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if string(s.Bwlimit) != tt.want {
				t.Errorf("got %q, want %q", s.Bwlimit, tt.want)
			}
		})
	}
}

func mustClient(t *testing.T, opts apiclient.Options) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAFile(t *testing.T) {
	api := apitest.NewTLS()
	t.Cleanup(api.Close)
	api.AddStorage("primary", "S")
	ctx := context.Background()
	// System roots do not trust the test CA: verification is on by default.
	plain := mustClient(t, apiclient.Options{URL: api.BaseURL()})
	if _, err := plain.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: got %v", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, api.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	trusted := mustClient(t, apiclient.Options{URL: api.BaseURL(), CAFile: ca})
	if _, err := trusted.Health(ctx); err != nil {
		t.Fatalf("with api_ca_file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("junk"), 0o644)
	if _, err := apiclient.New(apiclient.Options{URL: api.BaseURL(), CAFile: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Fatalf("bad CA file: got %v", err)
	}
}
