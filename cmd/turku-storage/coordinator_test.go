package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// agentAPI calls the built-in coordinator the way turku-agent's api_call
// does: POST, JSON body, exact content type.
func agentAPI(t *testing.T, base, call string, body any) (int, map[string]any, string) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/"+call, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: reply is not JSON: %q", call, raw)
		}
	}
	return resp.StatusCode, out, string(raw)
}

func TestBuiltInCoordinatorAgentFlow(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]any{"machine_registration_secret": "MRS"})
	d := startServe(t, s)
	if d.coord == nil {
		t.Fatal("no built-in coordinator without api_url")
	}
	base := "http://" + d.coord.String() + "/v1"
	key := agenttest.NewKey(t)
	data := t.TempDir()
	agenttest.WriteTree(t, data, map[string]string{"motd": "hello\n"})
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "etc", Path: data, User: "etc-user", Password: "etc-pass"}})

	// turku-update-config: register with the machine registration auth.
	machine := map[string]any{
		"uuid": machineUUID, "secret": "machine-secret", "unit_name": "web1",
		"ssh_public_key": key.Authorized, "published": true,
		"sources": map[string]any{"etc": map[string]any{
			"path": "/etc", "frequency": "daily", "retention": "last 5 days",
			"filter": []string{}, "exclude": []string{"*.swp"},
		}},
	}
	if code, _, body := agentAPI(t, base, "update_config", map[string]any{"machine": machine}); code != http.StatusForbidden || body != "Bad auth" {
		t.Fatalf("registration without auth: %d %q, want 403 Bad auth", code, body)
	}
	code, _, body := agentAPI(t, base, "update_config", map[string]any{
		"machine": machine, "auth": map[string]string{"name": "Machine Registrations", "secret": "MRS"},
	})
	if code != http.StatusOK {
		t.Fatalf("registration: %d %q", code, body)
	}
	// The SSH server learns the new key from the refresh the registration
	// triggered.
	d.log.WaitFor(t, "refreshed machines from the built-in coordinator\" machines=1", 1, waitLong)

	// A source that never ran is not said to have succeeded.
	r := run(t, context.Background(), nil, "-c", s.dir, "sources", "list")
	if !regexp.MustCompile(`(?m)^web1\s+etc\s+/etc\s+daily\s+last 5 days\s+true\s+never\s+never\s+\S+$`).MatchString(r.stdout) {
		t.Errorf("sources list before any backup: want LAST OK and LAST BACKUP never:\n%s", r.stdout)
	}
	// The registration auth exists: a second one needs its own name.
	r = run(t, context.Background(), nil, "-c", s.dir, "auth", "create", "machine")
	if r.code != 1 || !strings.Contains(r.stderr, "--name") || r.stdout != "" {
		t.Errorf("auth create machine again: exit %d, stdout %q, stderr %q; want a refusal pointing at --name", r.code, r.stdout, r.stderr)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "auth", "create", "machine", "--name", "Second"); r.code != 0 || !strings.Contains(r.stdout, "api_auth_name: Second\n") {
		t.Errorf("auth create machine --name Second: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	ping := map[string]any{"machine": map[string]string{"uuid": machineUUID, "secret": "machine-secret"}}
	if code, _, body := agentAPI(t, base, "agent_ping_checkin", map[string]any{"machine": map[string]string{"uuid": machineUUID, "secret": "wrong"}}); code != http.StatusForbidden || body != "Bad auth" {
		t.Fatalf("wrong machine secret: %d %q, want 403 Bad auth", code, body)
	}
	_, reply, _ := agentAPI(t, base, "agent_ping_checkin", ping)
	if n := len(reply["machine"].(map[string]any)["scheduled_sources"].(map[string]any)); n != 0 {
		t.Fatalf("a new daily source is due at once (%d due); want tomorrow", n)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "sources", "run-now", "web1", "etc"); r.code != 0 || r.stdout != "web1 etc is due now\n" || r.stderr != "" {
		t.Fatalf("sources run-now: exit %d, stdout %q, stderr %q; want only its own message", r.code, r.stdout, r.stderr)
	}
	_, reply, _ = agentAPI(t, base, "agent_ping_checkin", ping)
	due := reply["machine"].(map[string]any)["scheduled_sources"].(map[string]any)
	src, ok := due["etc"].(map[string]any)
	if !ok {
		t.Fatalf("etc not due after run-now: %v", due)
	}
	storage := src["storage"].(map[string]any)
	if storage["name"] != "primary" || storage["ssh_ping_user"] != "turku-ping" {
		t.Errorf("storage block %v", storage)
	}
	var hostKeys []string
	for _, k := range storage["ssh_ping_host_keys"].([]any) {
		hostKeys = append(hostKeys, k.(string))
	}

	// turku-agent-ping: rsync daemon, then ssh -R with the advertised keys.
	a := &agent{uuid: machineUUID, key: key, data: data, rsyncd: rsyncd}
	res := a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "End: web1 etc") {
		t.Fatalf("backup: exit %d", res.ExitCode)
	}
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong) // in the background
	_, reply, _ = agentAPI(t, base, "agent_ping_checkin", ping)
	if due := reply["machine"].(map[string]any)["scheduled_sources"].(map[string]any); len(due) != 0 {
		t.Errorf("still due after a successful backup: %v", due)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "logs", "web1")
	if r.code != 0 || !regexp.MustCompile(`web1\s+etc\s+ok\s+etc_`).MatchString(r.stdout) {
		t.Errorf("logs: exit %d, stdout %q", r.code, r.stdout)
	}
	_, reply, _ = agentAPI(t, base, "agent_ping_restore", ping)
	if _, ok := reply["machine"].(map[string]any)["sources"].(map[string]any)["etc"]; !ok {
		t.Errorf("agent_ping_restore does not list etc: %v", reply)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "snapshots", "web1", "etc", "--json")
	var snaps map[string][]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &snaps); err != nil || len(snaps["etc"]) != 1 || snaps["etc"][0]["latest"] != true {
		t.Errorf("snapshots --json: %v %q", err, r.stdout)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "machines", "list"); !strings.Contains(r.stdout, machineUUID) {
		t.Errorf("machines list lacks the machine: %q", r.stdout)
	}
	r = run(t, context.Background(), nil, "-c", s.dir, "coordinator", "export")
	var fixture []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fixture); err != nil || len(fixture) == 0 {
		t.Errorf("export is not a fixture: %v", err)
	}

	// Without turku-api, neither the log nor status speaks of one.
	if log := d.log.String(); strings.Contains(log, "from API") {
		t.Errorf("the log speaks of an API without one:\n%s", log)
	}
	var b strings.Builder
	if err := statusJSON(t, s).WriteText(&b, true); err != nil || !strings.Contains(b.String(), "keys: 1 machine from the built-in coordinator") {
		t.Errorf("status: %v\n%s", err, b.String())
	}

	// A first start is not a warning: the refresh right after fills the
	// empty cache.
	if log := d.log.String(); strings.Contains(log, `level=WARN msg="no cached machine keys`) || !strings.Contains(log, "no cached machine keys yet") {
		t.Errorf("first start: want the empty cache noted at INFO, not WARN")
	}
	// With api_url set, logs reads this unit's own history too: nothing
	// yet on a new site.
	withAPI := newSite(t, map[string]any{"api_url": "https://turku.example.com/v1"})
	r = run(t, context.Background(), nil, "-c", withAPI.dir, "logs")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("logs with api_url on a new site: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
