package backup

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// spooledSources lists the sources of the spooled reports, oldest first.
func spooledSources(t *testing.T, q *Reports) []string {
	t.Helper()
	var out []string
	for _, e := range q.listSpool() {
		data, err := os.ReadFile(filepath.Join(q.dir, e.name))
		if err != nil {
			t.Fatal(err)
		}
		// The summary names the report.
		_, rest, _ := strings.Cut(string(data), `"summary": "`)
		name, _, _ := strings.Cut(rest, `"`)
		out = append(out, name)
	}
	return out
}

// TestReportSpoolCap: with the API down for long, the spool stays within
// report_spool_max_count. The oldest report a newer one of its source
// follows goes first, then the oldest of all; each drop is logged at
// ERROR with its machine and source, and the newest report is never
// dropped.
func TestReportSpoolCap(t *testing.T) {
	var logs syncBuffer
	env := newTestEnv(t, nil, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	q := env.e.reports
	q.maxCount = 3
	q.retryDelays = nil
	for _, name := range []string{"etc-1", "home-1", "etc-2"} {
		src, _, _ := strings.Cut(name, "-")
		if err := q.spool(q.newPath(), testUUID, src, apiclient.SourceReport{Summary: name}); err != nil {
			t.Fatal(err)
		}
	}
	env.api.updateErrs = []error{errDown, errDown}
	q.Send(testUUID, "var", apiclient.SourceReport{Summary: "var-1"})
	env.api.flush()
	if got, want := strings.Join(spooledSources(t, q), " "), "home-1 etc-2 var-1"; got != want {
		t.Errorf("spool %q, want %q (the superseded etc-1 dropped)", got, want)
	}
	env.api.updateErrs = []error{errDown, errDown}
	q.Send(testUUID, "db", apiclient.SourceReport{Summary: "db-1"})
	env.api.flush()
	if got, want := strings.Join(spooledSources(t, q), " "), "etc-2 var-1 db-1"; got != want {
		t.Errorf("spool %q, want %q (the oldest, home-1, dropped)", got, want)
	}
	drops := strings.Count(logs.String(), `level=ERROR msg="report spool full: oldest report dropped"`)
	if drops != 2 || !regexp.MustCompile(`source=etc .*superseded=true`).MatchString(logs.String()) ||
		!regexp.MustCompile(`source=home .*superseded=false`).MatchString(logs.String()) {
		t.Errorf("want two drops logged, etc (superseded) and home: %s", logs.String())
	}
	if u := q.Usage(); u.Reports != 3 || u.MaxReports != 3 || u.Dropped != 2 || u.Bytes == 0 {
		t.Errorf("usage %+v, want 3 of 3 reports, 2 dropped", u)
	}
}

// TestReportSpoolCapBytes: the byte limit drops the oldest as well.
func TestReportSpoolCapBytes(t *testing.T) {
	env := newTestEnv(t, nil, nil)
	q := env.e.reports
	q.retryDelays = nil
	big := strings.Repeat("x", 4000)
	for _, name := range []string{"a", "b", "c"} {
		if err := q.spool(q.newPath(), testUUID, name, apiclient.SourceReport{Summary: name + "-" + big}); err != nil {
			t.Fatal(err)
		}
	}
	q.maxBytes = q.Usage().Bytes // full
	env.api.updateErrs = []error{errDown, errDown}
	q.Send(testUUID, "d", apiclient.SourceReport{Summary: "d-" + big})
	env.api.flush()
	got := spooledSources(t, q)
	if len(got) != 3 || !strings.HasPrefix(got[0], "b-") || !strings.HasPrefix(got[2], "d-") {
		t.Errorf("spool %.10q, want b, c, d", got)
	}
	if u := q.Usage(); u.Bytes > q.maxBytes {
		t.Errorf("spool holds %d bytes, more than %d", u.Bytes, q.maxBytes)
	}
}

// TestResendReportsKeptBehindSender: reports kept only because an older
// one of their source is still with its first sender are counted without
// a nil error wrapped into the message ("%!w(<nil>)").
func TestResendReportsKeptBehindSender(t *testing.T) {
	env := newTestEnv(t, nil, nil)
	q := env.e.reports
	first := q.newPath()
	for _, p := range []string{first, q.newPath()} {
		if err := q.spool(p, testUUID, "etc", apiclient.SourceReport{Success: true}); err != nil {
			t.Fatal(err)
		}
	}
	q.claim(first) // its delivery waits for the API's answer
	err := env.e.ResendReports(t.Context())
	if err == nil || !strings.Contains(err.Error(), "2 still queued") || strings.Contains(err.Error(), "%!") {
		t.Errorf("ResendReports: %v, want 2 still queued and a readable message", err)
	}
	q.unclaim(first)
}

// TestReportSourceNotFound: the API answering a report with "Source not
// found" (the source was deleted from a machine still assigned here) tells
// SourceRemoved, so its metric series go; "Machine not found" does not.
func TestReportSourceNotFound(t *testing.T) {
	env := newTestEnv(t, nil, nil)
	q := env.e.reports
	var removed []string
	q.removed = func(machine, source string) { removed = append(removed, machine+"/"+source) }
	env.api.updateErrs = []error{&apiclient.Error{Call: "storage_ping_source_update", Status: 404, Body: "Source not found"}}
	q.Send(testUUID, "etc", apiclient.SourceReport{Success: true})
	env.api.flush()
	env.api.updateErrs = []error{&apiclient.Error{Call: "storage_ping_source_update", Status: 404, Body: "Machine not found"}}
	q.Send(testUUID, "home", apiclient.SourceReport{Success: true})
	env.api.flush()
	if got := strings.Join(removed, " "); got != testUUID+"/etc" {
		t.Errorf("SourceRemoved told of %q, want only %s/etc", got, testUUID)
	}
}
