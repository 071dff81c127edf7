package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// asMainEnv makes the test binary run main() instead of the tests, so a
// test can run turku-storage as its own process and signal it.
const asMainEnv = "TURKU_STORAGE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestServeSIGHUPDuringStartup: a SIGHUP that arrived before serve had
// installed its handler (systemctl reload right after start) ended the
// daemon. serve runs as its own process here; the signal is sent while it
// is provably starting: it has read its configuration (and warned about
// an unknown key) and is blocked opening log_file, a FIFO.
func TestServeSIGHUPDuringStartup(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	api, s := newAPISite(t, map[string]any{"log_file": fifo, "zz_unknown_key": 1})
	api.AddStorage("primary", "S")

	cmd := exec.Command(os.Args[0], "-c", s.dir, "serve")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once exitErr is set
	var exitErr error
	warned := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			t.Logf("serve stderr: %s", sc.Text())
			if !seen && strings.Contains(sc.Text(), "zz_unknown_key") {
				seen = true
				close(warned)
			}
		}
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case <-warned:
	case <-exited:
		t.Fatalf("serve exited before reading its configuration: %v", exitErr)
	case <-time.After(waitLong):
		t.Fatal("serve did not warn about zz_unknown_key on stderr before opening log_file")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Opened read-write, the FIFO never reports EOF to us and never blocks
	// serve's open.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	log := &agenttest.Output{}
	reloaded := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(f)
		seen := false
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if !seen && strings.Contains(sc.Text(), "SIGHUP: reloading configuration") {
				seen = true
				close(reloaded)
			}
		}
	}()
	select {
	case <-reloaded:
	case <-exited:
		t.Fatalf("serve died of a SIGHUP during start-up: %v\nlog:\n%s", exitErr, log.String())
	case <-time.After(waitLong):
		t.Fatalf("serve neither reloaded nor exited:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "msg=serving") {
		t.Errorf("reload before serving:\n%s", log.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-exited
	if exitErr != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0\nlog:\n%s", exitErr, log.String())
	}
}

// slowSourceAgent is a machine whose one source takes minutes at 10 KiB/s: its
// backup holds a slot until serve stops.
func slowSourceAgent(t *testing.T, api *apitest.Server, uuid, unit string) *agent {
	t.Helper()
	a := newAgent(t, api, uuid, unit, map[string]string{"big": strings.Repeat("0123456789abcdef", 1<<16)})
	api.AddSource(uuid, "etc", apiclient.Source{Path: "/etc", Bwlimit: "10"})
	return a
}

// TestServeReload: SIGHUP re-reads the configuration, but the API is told
// only what the SSH server serves (its login name and host keys are bound
// at start), no unused host key file is created, and the backups of
// sessions started before and after the reload share one
// max_concurrent_backups.
func TestServeReload(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, map[string]any{"max_concurrent_backups": 1})
	first := slowSourceAgent(t, api, machineUUID, "web1")
	second := newAgent(t, api, "5d4ad5bb-2f7a-4f43-9d6e-7a1a3c4e0b21", "web2", map[string]string{"f": "1"})
	api.AddSource("5d4ad5bb-2f7a-4f43-9d6e-7a1a3c4e0b21", "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--shutdown-timeout", "0s", "--debug")
	d.log.WaitFor(t, "refreshed machines from API", 1, waitLong)

	held := first.ping(t, d, hostKeys)
	d.log.WaitFor(t, `msg="rsync start"`, 1, waitLong) // holds the only slot

	newKey := filepath.Join(t.TempDir(), "new_host_key")
	reload := []byte(`{"ssh_ping_user": "someone-else", "ssh_host_key_files": ["` + newKey + `"]}`)
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-reload.json"), reload, 0o644); err != nil {
		t.Fatal(err)
	}
	refreshes := d.log.Count("refreshed machines from API")
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reloaded", 1, waitLong)
	d.log.WaitFor(t, "refreshed machines from API", refreshes+1, waitLong)
	for _, key := range []string{"ssh_ping_user", "ssh_host_key_files"} {
		if !regexp.MustCompile(`need a restart.*keys=.*` + key).MatchString(d.log.String()) {
			t.Errorf("%s not named as needing a restart", key)
		}
	}

	reqs := api.Requests("storage_update_config")
	st := reqs[len(reqs)-1].Body["storage"].(map[string]any)
	if st["ssh_ping_user"] != "turku-ping" {
		t.Errorf("advertised ssh_ping_user %v after reload, want the served turku-ping", st["ssh_ping_user"])
	}
	var advertised []string
	for _, k := range st["ssh_ping_host_keys"].([]any) {
		advertised = append(advertised, k.(string))
	}
	if strings.Join(advertised, "\n") != strings.Join(hostKeys, "\n") {
		t.Errorf("advertised host keys %q after reload, want the served %q", advertised, hostKeys)
	}
	if _, err := os.Stat(newKey); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reload created host key %s, which nothing serves: %v", newKey, err)
	}

	// A session on the new engine waits for the slot the old one holds.
	waiting := second.ping(t, d, hostKeys)
	line := waiting.Stderr().WaitForLine(t, regexp.MustCompile(`Waiting for a free backup slot|INFO: Done`), waitLong)
	if !strings.Contains(line[0], "Waiting for a free backup slot") {
		t.Errorf("second backup ran beside the first with max_concurrent_backups 1: %q", line[0])
	}
	d.stop(t)
	held.Wait(t, waitLong)
	waiting.Wait(t, waitLong)
}

// TestServeSecondSignalStopsAtOnce: during the drain, a second
// SIGTERM/SIGINT cancels the running sessions without waiting for
// --shutdown-timeout, and says so.
func TestServeSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	a := slowSourceAgent(t, api, machineUUID, "web1")
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--shutdown-timeout", "1h")

	sess := a.ping(t, d, hostKeys)
	sess.Stderr().WaitFor(t, "Begin: web1 etc", 1, waitLong)
	d.cancel() // SIGTERM: the backup may run for an hour
	d.log.WaitFor(t, "shutting down", 1, waitLong)
	d.force(errors.New("second signal (terminated)"))
	if r := d.stop(t); r.code != 0 {
		t.Errorf("serve exit %d, want 0", r.code)
	}
	if !strings.Contains(d.log.String(), `msg="second signal: stopping at once"`) {
		t.Error("the forced stop is not logged")
	}
	res := sess.Wait(t, waitLong)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "ERROR: Session ended: shutdown: second signal (terminated)") {
		t.Errorf("agent: exit %d, stderr %q", res.ExitCode, res.Stderr)
	}
	// The cancelled backup's failure reaches the API, or, when the forced
	// stop cut its post short, waits in the spool for the next start:
	// never lost, never a success. A stop at once can fall between the
	// API's answer and the spool file's removal; the next start then
	// sends it again (at least once, not exactly once, after a forced
	// stop).
	reports := api.Reports()
	spooled := listFiles(t, filepath.Join(s.varDir, "reports"))
	if len(reports) > 1 || len(spooled) > 1 || len(reports)+len(spooled) == 0 || (len(reports) == 1 && reports[0].Success) {
		t.Errorf("reports %+v, spooled %q; want the cancelled backup reported failed, or spooled", reports, spooled)
	}
}

// TestServeReportOnceWithHungAPI: turku-api hung (not down) while a report
// was posted, and processed every timed-out attempt once it woke up, plus
// the spooled copy: 4 BackupLog rows for one snapshot, and the agent's
// session held by the retries. Now the session ends once the snapshot is
// safe, the report waits for its answer past api_timeout, a refresh in
// the meantime does not send it again, and the API ends up with one row.
func TestServeReportOnceWithHungAPI(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, map[string]any{"api_timeout": "1s"})
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "1"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s, "--debug")
	d.log.WaitFor(t, "report spool checked", 1, waitLong)

	arrived, release := api.Hang("storage_ping_source_update")
	t.Cleanup(release)
	res := a.ping(t, d, hostKeys).Wait(t, waitLong)
	if res.ExitCode != 0 {
		t.Fatalf("agent: exit %d", res.ExitCode)
	}
	<-arrived // the agent's session ended with its report unanswered
	d.log.WaitFor(t, "report not answered yet", 1, waitLong)

	// The API answers other calls again: the spool is checked, and the
	// report in flight is left alone.
	checks := d.log.Count("report spool checked")
	d.hup <- struct{}{}
	d.log.WaitFor(t, "report spool checked", checks+1, waitLong)
	if n := len(api.Requests("storage_ping_source_update")) + len(arrived); n != 0 {
		t.Fatalf("%d more copies of the report sent while the first was unanswered", n)
	}

	release() // the API wakes up and processes the held report
	d.log.WaitFor(t, `msg="report delivered"`, 1, waitLong)
	checks = d.log.Count("report spool checked")
	d.hup <- struct{}{}
	d.log.WaitFor(t, "report spool checked", checks+1, waitLong)
	if reports := api.Reports(); len(reports) != 1 || !reports[0].Success {
		t.Errorf("BackupLog rows %+v, want exactly one success", reports)
	}
	if files := listFiles(t, filepath.Join(s.varDir, "reports")); len(files) != 0 {
		t.Errorf("spool still holds %q", files)
	}
}

// TestServeResendsAfterRefresh: a report the API answered with 5xx
// (three times) was resent only every 5 minutes. It now goes as soon as
// an API call succeeds again: the next key refresh.
func TestServeResendsAfterRefresh(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	a := newAgent(t, api, machineUUID, "web1", map[string]string{"f": "1"})
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)

	api.FailCalls("storage_ping_source_update", 3) // the first try and both retries
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("agent: exit %d", res.ExitCode)
	}
	d.log.WaitFor(t, "report not delivered; kept to resend after the next successful API call", 1, waitLong)
	if reports := api.Reports(); len(reports) != 0 {
		t.Fatalf("reports %+v while the API failed", reports)
	}
	d.hup <- struct{}{} // stands for the next update_config_interval
	d.log.WaitFor(t, "spooled report delivered", 1, waitLong)
	if reports := api.Reports(); len(reports) != 1 || !reports[0].Success {
		t.Errorf("reports %+v, want one success", reports)
	}
	if files := listFiles(t, filepath.Join(s.varDir, "reports")); len(files) != 0 {
		t.Errorf("spool still holds %q", files)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
