package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// runQuickstart runs examples/quickstart.sh with args (-n or -w: no
// build, no serve) on dir and returns its exit status and what it printed.
func runQuickstart(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join("..", "..", "examples", "quickstart.sh"), "-d", dir, "-s", "28022", "-a", "28410"}, args...)...)
	cmd.Env = agenttest.Env(t)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("quickstart.sh: %v", err)
	}
	t.Logf("quickstart.sh %s: exit %d\n%s", strings.Join(args, " "), code, out)
	return code, string(out)
}

// printedJSON returns the JSON object the quickstart prints after the line
// naming file.
func printedJSON(t *testing.T, out, file string) map[string]any {
	t.Helper()
	i := strings.Index(out, file+":")
	if i < 0 {
		t.Fatalf("quickstart does not show %s", file)
	}
	rest := out[i:]
	j := strings.Index(rest, "{")
	if j < 0 {
		t.Fatalf("quickstart shows no JSON for %s", file)
	}
	var v map[string]any
	if err := json.NewDecoder(strings.NewReader(rest[j:])).Decode(&v); err != nil {
		t.Fatalf("%s as printed is not JSON: %v\n%s", file, err, rest)
	}
	return v
}

// TestQuickstartSteps follows examples/quickstart.sh's printed steps on
// the server side, with the agent played by the coordinator calls
// turku-update-config makes and by the real ssh and rsync daemon: the
// printed agent configuration (a second agent's, with its own
// configuration, var and lock directories) and source file register a
// machine whose source, made due with the printed run-now, ends in a
// snapshot that `logs` and `snapshots` show. -n creates nothing; a run
// beside the running serve stops. The script's ports are replaced with
// loopback port 0 through the TURKU_STORAGE_* overrides.
func TestQuickstartSteps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qs")
	agentDir := filepath.Join(dir, "agent")

	// -n: the configuration and the steps, and nothing on disk.
	code, out := runQuickstart(t, dir, "-n")
	if code != 0 {
		t.Fatalf("quickstart.sh -n: exit %d", code)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("quickstart.sh -n created %s (%v)", dir, err)
	}
	if !strings.Contains(out, `"var_dir": "`+filepath.Join(dir, "var")+`"`) {
		t.Errorf("quickstart.sh -n does not show the configuration it would write")
	}

	// -w: the configuration written, and the same steps.
	code, out = runQuickstart(t, dir, "-w")
	if code != 0 {
		t.Fatalf("quickstart.sh -w: exit %d", code)
	}
	agentCfg := printedJSON(t, out, filepath.Join(agentDir, "etc", "config.d", "10-api.json"))
	sources := printedJSON(t, out, filepath.Join(agentDir, "etc", "sources.d", "etc.json"))
	unit, _ := agentCfg["unit_name"].(string)
	if unit == "" {
		t.Fatalf("printed agent config has no unit_name: %v", agentCfg)
	}
	for _, want := range []string{
		"fresh state under " + dir,
		"https://github.com/rfinnie/turku-agent",
		"apt-get install -y python3-requests python3-yaml",
		"http://127.0.0.1:28410/v1",
		// A second agent: its own configuration directory everywhere.
		"turku-update-config -c " + filepath.Join(agentDir, "etc") + "\n",
		"turku-agent-rsyncd-wrapper -c " + filepath.Join(agentDir, "etc") + " --detach\n",
		"turku-agent-ping -c " + filepath.Join(agentDir, "etc") + "\n",
		"sources run-now " + unit + " etc\n",
		"snapshots " + unit + " etc\n",
		// How backups go on.
		"every 5\n   minutes",
		"*/5 * * * * root /opt/turku-agent/bin/turku-agent-ping -c " + filepath.Join(agentDir, "etc"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("quickstart output lacks %q", want)
		}
	}
	if strings.Contains(out, "UNIT") {
		t.Errorf("quickstart output has a placeholder UNIT instead of the unit name")
	}
	for key, want := range map[string]string{
		"api_url":              "http://127.0.0.1:28410/v1",
		"var_dir":              filepath.Join(agentDir, "var"),
		"lock_dir":             filepath.Join(agentDir, "lock"),
		"rsyncd_local_address": "127.0.0.2",
	} {
		if agentCfg[key] != want {
			t.Errorf("printed agent config: %s %v, want %s", key, agentCfg[key], want)
		}
	}

	t.Setenv("TURKU_STORAGE_SSH_LISTEN", "127.0.0.1:0")
	t.Setenv("TURKU_STORAGE_COORDINATOR_LISTEN", "127.0.0.1:0")
	s := &site{dir: filepath.Join(dir, "etc"), varDir: filepath.Join(dir, "var"), volume: filepath.Join(dir, "volume")}
	if r := run(t, context.Background(), nil, "-c", s.dir, "config", "check"); r.code != 0 {
		t.Fatalf("config check of the quickstart configuration: exit %d", r.code)
	}
	d := startServe(t, s)
	base := "http://" + d.coord.String() + "/v1"

	// Step 4, turku-update-config: the machine with the printed
	// registration auth and source file.
	key := agenttest.NewKey(t)
	data := t.TempDir()
	agenttest.WriteTree(t, data, map[string]string{"hostname": unit + "\n"})
	rsyncd := agenttest.StartRsyncd(t, "127.0.0.1", []agenttest.Module{{Name: "etc", Path: data, User: "etc-user", Password: "etc-pass"}})
	code, _, body := agentAPI(t, base, "update_config", map[string]any{
		"machine": map[string]any{"uuid": machineUUID, "secret": "machine-secret", "unit_name": unit,
			"ssh_public_key": key.Authorized, "sources": sources},
		"auth": map[string]any{"name": agentCfg["api_auth_name"], "secret": agentCfg["api_auth_secret"]},
	})
	if code != http.StatusOK {
		t.Fatalf("registration with the printed auth: %d %q", code, body)
	}
	d.log.WaitFor(t, "refreshed machines from the built-in coordinator\" machines=1", 1, waitLong)
	if r := run(t, context.Background(), nil, "-c", s.dir, "machines", "list"); !strings.Contains(r.stdout, machineUUID) {
		t.Errorf("machines list lacks the machine: %q", r.stdout)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "sources", "list"); !strings.Contains(r.stdout, "etc") {
		t.Errorf("sources list lacks etc: %q", r.stdout)
	}

	// Step 5: run-now, then turku-agent-ping.
	if r := run(t, context.Background(), nil, "-c", s.dir, "sources", "run-now", unit, "etc"); r.code != 0 {
		t.Fatalf("sources run-now %s etc: exit %d", unit, r.code)
	}
	_, reply, _ := agentAPI(t, base, "agent_ping_checkin", map[string]any{"machine": map[string]string{"uuid": machineUUID, "secret": "machine-secret"}})
	var hostKeys []string
	for _, k := range reply["machine"].(map[string]any)["scheduled_sources"].(map[string]any)["etc"].(map[string]any)["storage"].(map[string]any)["ssh_ping_host_keys"].([]any) {
		hostKeys = append(hostKeys, k.(string))
	}
	a := &agent{uuid: machineUUID, key: key, data: data, rsyncd: rsyncd}
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 || !strings.Contains(res.Stderr, "End: "+unit+" etc") {
		t.Fatalf("backup: exit %d", res.ExitCode)
	}

	// Step 6: the result, once the report (delivered after the agent's
	// session) reached the coordinator.
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong)
	if r := run(t, context.Background(), nil, "-c", s.dir, "logs"); !regexp.MustCompile(regexp.QuoteMeta(unit) + `\s+etc\s+ok\s+etc_`).MatchString(r.stdout) {
		t.Errorf("logs: %q", r.stdout)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "snapshots", unit, "etc"); r.code != 0 || !strings.Contains(r.stdout, "latest") {
		t.Errorf("snapshots %s etc: exit %d, %q", unit, r.code, r.stdout)
	}

	// A second run while serve runs there stops before building or
	// writing anything, naming the pid.
	code, out = runQuickstart(t, dir, "-b", filepath.Join(t.TempDir(), "not-built"))
	if want := fmt.Sprintf("a turku-storage serve already runs on %s (pid %d)", dir, os.Getpid()); code != 1 || !strings.Contains(out, want) {
		t.Errorf("second run beside a running serve: exit %d; want 1 and %q", code, want)
	}
	if d.stop(t).code != 0 {
		t.Errorf("serve did not stop cleanly")
	}

	// Once it stopped, a second run says that it reuses this state.
	if _, out := runQuickstart(t, dir, "-w"); !strings.Contains(out, "reusing the state under "+dir) {
		t.Errorf("second run does not say it reuses the state")
	}
}
