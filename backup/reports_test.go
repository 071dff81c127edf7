package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/apiclient"
)

// errDown is a report that certainly never reached the API.
var errDown = fmt.Errorf("storage_ping_source_update: %w: connection refused", apiclient.ErrNotSent)

// spoolFiles lists the spool once no background delivery runs.
func spoolFiles(t *testing.T, env *testEnv) []string {
	t.Helper()
	env.api.flush()
	return listTree(t, filepath.Join(env.varDir, "reports"))
}

// TestReportRetriedThenDelivered: a report that certainly did not reach
// the API, or that it answered with an HTTP 5xx (it did not take it), is
// sent again at once.
func TestReportRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		errs     []error
		attempts int
	}{
		{"not sent twice", []error{errDown, errDown}, 3},
		{"answered 502", []error{&apiclient.Error{Call: "storage_ping_source_update", Status: 502, Body: "Bad Gateway"}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := reportEnv(t, map[string]apiclient.Source{"etc": {}})
			env.api.updateErrs = tc.errs
			if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
				t.Fatal(err)
			}
			if rep := env.api.onlyReport(t); !rep.Success {
				t.Errorf("report %+v", rep)
			}
			if env.api.attempts != tc.attempts {
				t.Errorf("%d attempts, want %d", env.api.attempts, tc.attempts)
			}
			if got := spoolFiles(t, env); got != nil {
				t.Errorf("spooled %q", got)
			}
		})
	}
}

func TestReportSpooledAndResent(t *testing.T) {
	t.Parallel()
	env := reportEnv(t, map[string]apiclient.Source{"etc": {}, "home": {}})
	env.api.updateErrs = []error{errDown, errDown, errDown, errDown, errDown, errDown}
	if err := env.e.Pull(t.Context(), env.request(creds("etc", "home"))); err != nil {
		t.Fatalf("Pull: %v (a spooled report is not a failure)", err)
	}
	files := spoolFiles(t, env)
	if len(files) != 2 || len(env.api.got()) != 0 {
		t.Fatalf("spool %q, delivered %+v", files, env.api.got())
	}
	fi, err := os.Stat(filepath.Join(env.varDir, "reports", files[0]))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spool file mode: %v, %v", fi, err)
	}

	// Still down: nothing is lost, nothing is duplicated.
	env.api.updateErrs = []error{errDown}
	if err := env.e.ResendReports(t.Context()); err == nil || !strings.Contains(err.Error(), "2 still queued") {
		t.Errorf("ResendReports while down: %v", err)
	}
	if got := spoolFiles(t, env); !cmp.Equal(got, files) {
		t.Errorf("spool changed to %q", got)
	}

	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := env.api.got()
	if len(got) != 2 || got[0].Source != "etc" || got[1].Source != "home" || !got[0].Report.Success || got[0].Report.Snapshot == "" || got[0].Machine != testUUID {
		t.Errorf("resent %+v", got)
	}
	wantSpoolEmpty(t, env)
}

// TestReportPermanentRefusal: the snapshot is safe before the report is
// sent, so the API refusing the report (the source was deleted meanwhile)
// fails nothing the agent waits for; it is logged and not retried.
func TestReportPermanentRefusal(t *testing.T) {
	t.Parallel()
	env := reportEnv(t, map[string]apiclient.Source{"etc": {}})
	env.api.updateErrs = []error{&apiclient.Error{Call: "storage_ping_source_update", Status: 404, Body: "Source not found"}}
	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if got := spoolFiles(t, env); got != nil {
		t.Errorf("spooled a refused report: %q", got)
	}
	if env.api.attempts != 1 {
		t.Errorf("%d attempts, want 1 (not retried)", env.api.attempts)
	}
}

// TestReportUnansweredSentOnceLater: a report that was sent and not
// answered may have reached the API; it is not repeated at once but kept,
// and ResendReports sends it once.
func TestReportUnansweredSentOnceLater(t *testing.T) {
	t.Parallel()
	env := reportEnv(t, map[string]apiclient.Source{"etc": {}})
	env.api.updateErrs = []error{fmt.Errorf("storage_ping_source_update: %w", context.DeadlineExceeded)}
	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
		t.Fatal(err)
	}
	if files := spoolFiles(t, env); len(files) != 1 || env.api.attempts != 1 {
		t.Fatalf("after an unanswered report: spool %q, %d attempts; want 1 file, 1 attempt", files, env.api.attempts)
	}
	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantDeliveredOnce(t, env, 2)
}

// reportEnv is a test environment for sources whose rsync succeeds
// (recording what it was asked to do), for tests of what happens to the
// reports.
func reportEnv(t *testing.T, sources map[string]apiclient.Source) *testEnv {
	t.Helper()
	rec := t.TempDir()
	return newTestEnv(t, sources, func(o *Options) { o.RsyncCommand = recordingRsync(t, rec, 0, "") })
}

// wantSpoolEmpty fails t if env's report spool still holds a file.
func wantSpoolEmpty(t *testing.T, env *testEnv) {
	t.Helper()
	if files := spoolFiles(t, env); files != nil {
		t.Errorf("spool not emptied: %q", files)
	}
}

// wantDeliveredOnce fails t unless env's API got the report once, after
// attempts tries, and the spool is empty.
func wantDeliveredOnce(t *testing.T, env *testEnv, attempts int) {
	t.Helper()
	if env.api.attempts != attempts || len(env.api.got()) != 1 {
		t.Errorf("%d attempts, %d delivered; want %d and 1", env.api.attempts, len(env.api.got()), attempts)
	}
	wantSpoolEmpty(t, env)
}

// pulledWithAPIHung returns an environment whose API holds every report
// until env.api.hold closes, after a Pull of source etc has returned and
// its report has reached the API, unanswered.
func pulledWithAPIHung(t *testing.T) *testEnv {
	t.Helper()
	env := reportEnv(t, map[string]apiclient.Source{"etc": {}})
	env.api.hold, env.api.arrived = make(chan struct{}), make(chan struct{}, 4)
	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
		t.Fatal(err)
	}
	<-env.api.arrived
	return env
}

// TestReportHungAPI: with the API hung, Pull returns (the agent's session
// ends) while the report waits for its answer; ResendReports meanwhile
// leaves it alone; when the API wakes up and processes it, the report is
// delivered exactly once.
func TestReportHungAPI(t *testing.T) {
	t.Parallel()
	env := pulledWithAPIHung(t)
	err := env.e.ResendReports(t.Context())
	if err == nil || !strings.Contains(err.Error(), "1 still queued") {
		t.Errorf("ResendReports during the first delivery: %v, want 1 still queued", err)
	}
	close(env.api.hold)
	if got := env.api.got(); len(got) != 1 || !got[0].Report.Success {
		t.Fatalf("delivered %+v, want one success", got)
	}
	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantDeliveredOnce(t, env, 1)
}

// TestReportsClose: stopping the daemon while a report waits for its
// answer leaves it spooled for the next start.
func TestReportsClose(t *testing.T) {
	t.Parallel()
	env := pulledWithAPIHung(t)
	env.e.reports.Close()
	if files := spoolFiles(t, env); len(files) != 1 {
		t.Errorf("spool %q, want the report kept", files)
	}
}

func TestResendReportsBadFile(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	dir := filepath.Join(env.varDir, "reports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"1-bad.json":      "{",
		"2-escape.json":   `{"machine": "../x", "source": "etc", "report": {}}`,
		".tmp-3.json-123": "partial",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{".tmp-3.json-123", "1-bad.json.bad", "2-escape.json.bad"}, listTree(t, dir)); diff != "" {
		t.Error(diff)
	}
	if len(env.api.got()) != 0 {
		t.Errorf("sent %+v", env.api.got())
	}
}

// TestResendReportsPoisonReport: a report the API answers with an HTTP
// error of its own (turku-api fails with 500 on every report of a source
// whose frequency is "cron ...") used to stop ResendReports at the head of
// the queue, so no later report of any machine was ever delivered. The
// others go through now; later reports of the same source stay behind it.
func TestResendReportsPoisonReport(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	for _, src := range []string{"etc", "home", "etc"} {
		if err := env.e.reports.spool(env.e.reports.newPath(), testUUID, src, apiclient.SourceReport{Success: true, Summary: src}); err != nil {
			t.Fatal(err)
		}
	}
	env.api.updateErrs = []error{&apiclient.Error{Call: "storage_ping_source_update", Status: 500, Body: "Server Error (500)"}}
	err := env.e.ResendReports(t.Context())
	if err == nil || !strings.Contains(err.Error(), "2 still queued") {
		t.Errorf("ResendReports with one report failing: %v, want 2 still queued", err)
	}
	if got := env.api.got(); len(got) != 1 || got[0].Source != "home" {
		t.Fatalf("delivered %+v, want only home", got)
	}
	if env.api.attempts != 2 {
		t.Errorf("%d attempts, want 2 (the later etc report waits behind the first)", env.api.attempts)
	}
	if err := env.e.ResendReports(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := env.api.got(); len(got) != 3 || got[1].Source != "etc" || got[2].Source != "etc" {
		t.Errorf("delivered %+v", got)
	}
	wantSpoolEmpty(t, env)

	// Unreachable or bad auth: stop at once, nothing would go through.
	for _, down := range []error{errDown, &apiclient.Error{Call: "storage_ping_source_update", Status: 403, Body: "Bad auth"}} {
		for _, src := range []string{"etc", "home"} {
			if err := env.e.reports.spool(env.e.reports.newPath(), testUUID, src, apiclient.SourceReport{Success: true}); err != nil {
				t.Fatal(err)
			}
		}
		before := env.api.attempts
		env.api.updateErrs = []error{down}
		if err := env.e.ResendReports(t.Context()); err == nil || !strings.Contains(err.Error(), "2 still queued") {
			t.Errorf("%v: ResendReports: %v, want 2 still queued", down, err)
		}
		if env.api.attempts != before+1 {
			t.Errorf("%v: %d attempts, want 1", down, env.api.attempts-before)
		}
		if err := env.e.ResendReports(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}
