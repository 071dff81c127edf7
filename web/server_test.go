package web

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/turku-backup/turku-storage/monitor"
)

const (
	uuidOK     = "11111111-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
	uuidStale  = "22222222-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	uuidNever  = "33333333-cccc-4ccc-8ccc-cccccccccccc"
	uuidFail   = "44444444-dddd-4ddd-8ddd-dddddddddddd"
	uuidOrphan = "55555555-eeee-4eee-8eee-eeeeeeeeeeee"
)

// fiveMachines is a unit with one machine in each state but warning.
func fiveMachines(t *testing.T) *unit {
	u := newUnit(t)
	u.assigned(uuidOK, "web1", 30*24*time.Hour)
	u.assigned(uuidStale, "db1", 30*24*time.Hour)
	u.assigned(uuidNever, "new1", time.Hour)
	u.assigned(uuidFail, "mail1", 30*24*time.Hour)
	u.snapshot(uuidOK, "web1", "etc", 50*time.Hour, 2*time.Minute, 4096)
	u.snapshot(uuidOK, "web1", "etc", 2*time.Hour, 3*time.Minute, 8192)
	u.snapshot(uuidStale, "db1", "var", 72*time.Hour, time.Minute, 100)
	u.snapshot(uuidFail, "mail1", "etc", 3*time.Hour, time.Minute, 100)
	u.attempt(uuidFail, "mail1", "etc", false, time.Hour, "rsync: connection refused (code 10)\nmore lines")
	u.snapshot(uuidOrphan, "old1", "etc", 10*time.Hour, time.Minute, 100)
	return u
}

// TestHeaders: every answer forbids inline scripts, framing and MIME
// sniffing, whatever the page.
func TestHeaders(t *testing.T) {
	h := fiveMachines(t).server(Options{}).Handler()
	for _, target := range []string{"/", "/?state=stale&sort=name", "/api/overview", "/api/running", "/machine/" + uuidOK,
		"/api/machine/" + uuidOK, "/static/app.js", "/static/style.css", "/nowhere", "/machine/not-a-uuid"} {
		res, _ := get(t, h, http.MethodGet, target)
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", target, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: Content-Security-Policy %q allows inline code", target, csp)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q, want nosniff", target, got)
		}
		if got := res.Header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options %q, want DENY", target, got)
		}
	}
	types := map[string]string{"/": "text/html; charset=utf-8", "/api/overview": "application/json",
		"/static/app.js": "text/javascript; charset=utf-8", "/static/style.css": "text/css; charset=utf-8"}
	for target, want := range types {
		if res, _ := get(t, h, http.MethodGet, target); res.StatusCode != 200 || res.Header.Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", target, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
	// No inline script or style in a page: the policy would block it.
	_, body := get(t, h, http.MethodGet, "/machine/"+uuidOK)
	_, ov := get(t, h, http.MethodGet, "/")
	for _, page := range []string{body, ov} {
		if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]|\sstyle=|\son[a-z]+=`).MatchString(page) {
			t.Errorf("page has inline script, style or event handler")
		}
	}
}

// TestMethodsRefused: the dashboard is read-only; anything but GET and
// HEAD is refused before any handler runs, and nothing on disk changes.
func TestMethodsRefused(t *testing.T) {
	u := fiveMachines(t)
	h := u.server(Options{}).Handler()
	before := tree(t, u.root)
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		for _, target := range []string{"/", "/api/running", "/machine/" + uuidOK, "/static/app.js"} {
			res, _ := get(t, h, method, target)
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q, want 405 Allow \"GET, HEAD\"", method, target, res.StatusCode, res.Header.Get("Allow"))
			}
		}
	}
	res, body := get(t, h, http.MethodHead, "/")
	if res.StatusCode != 200 || body != "" || res.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD /: %d, %d bytes of body, Content-Length %q", res.StatusCode, len(body), res.Header.Get("Content-Length"))
	}
	if after := tree(t, u.root); !slices.Equal(before, after) {
		t.Errorf("the unit's files changed:\nbefore %v\nafter  %v", before, after)
	}
}

// tree lists every path under root with its size.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, root)+" "+fi.Mode().String()+" "+fi.ModTime().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAuth: with a password file every page and the JSON need a valid
// login; the answer without one names nothing of the unit.
func TestAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := fiveMachines(t).server(Options{Users: map[string][]byte{"ops": hash}}).Handler()
	login := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	for _, target := range []string{"/", "/api/overview", "/api/running", "/machine/" + uuidOK, "/api/machine/" + uuidOK, "/static/app.js"} {
		for _, tc := range []struct {
			name string
			mod  []func(*http.Request)
			want int
		}{
			{"none", nil, http.StatusUnauthorized},
			{"wrong password", []func(*http.Request){login("ops", "wrong")}, http.StatusUnauthorized},
			{"unknown user", []func(*http.Request){login("root", "correct horse")}, http.StatusUnauthorized},
			{"right", []func(*http.Request){login("ops", "correct horse")}, http.StatusOK},
			{"right again (remembered)", []func(*http.Request){login("ops", "correct horse")}, http.StatusOK},
		} {
			res, body := get(t, h, http.MethodGet, target, tc.mod...)
			if res.StatusCode != tc.want {
				t.Errorf("%s, login %s: got %d, want %d", target, tc.name, res.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized {
				if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Errorf("%s: 401 without a Basic challenge", target)
				}
				if strings.Contains(body, "web1") || strings.Contains(body, uuidOK) {
					t.Errorf("%s: the refusal shows the unit's machines", target)
				}
			}
		}
	}
}

// TestBadMachineURL: a machine in the URL that is not a UUID, or is one
// this unit does not know, is not found, and nothing outside VAR_DIR is
// read or shown.
func TestBadMachineURL(t *testing.T) {
	u := fiveMachines(t)
	// A secret beside VAR_DIR, and a machine-like directory and history
	// file outside it that a path traversal would reach.
	secret := "TOP-SECRET-" + strings.Repeat("x", 8)
	for _, p := range []string{filepath.Join(u.root, "secret.jsonl"), filepath.Join(u.root, "etc.snapshots", "x.json")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"source":"`+secret+`","end":"2026-12-06T10:00:00Z","success":false,"summary":"`+secret+`"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := u.server(Options{}).Handler()
	for _, target := range []string{
		"/machine/not-a-uuid", "/machine/..%2F..%2Fsecret", "/machine/..%2F..", "/api/machine/..%2F..%2Fsecret",
		"/api/machine/%2e%2e", "/machine/" + uuidOK + "%2F..%2F..", "/machine/" + strings.ToUpper(uuidOK) + "x",
		"/machine/99999999-9999-4999-8999-999999999999", "/api/machine/99999999-9999-4999-8999-999999999999",
		"/machine/" + uuidOK + "/extra", "/machine/", "/machine/%00",
	} {
		res, body := get(t, h, http.MethodGet, target)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: got %d, want 404", target, res.StatusCode)
		}
		if strings.Contains(body, secret) || strings.Contains(body, "web1") {
			t.Errorf("%s: the answer shows what it must not:\n%s", target, body)
		}
	}
}

// TestEscaping: machine names, source names and summaries come from
// agents and rsync; they are shown as text, never as markup, on every
// page and in the restore command.
func TestEscaping(t *testing.T) {
	u := newUnit(t)
	const (
		evilUnit    = `<script>alert("unit")</script>`
		evilSummary = `<img src=x onerror=alert(1)> & "quotes" 'too'`
		evilSource  = `it's<b>`
	)
	u.assigned(uuidOK, evilUnit, time.Hour)
	u.snapshot(uuidOK, "web1", evilSource, time.Hour, time.Minute, 10)
	u.attempt(uuidOK, evilUnit, evilSource, false, time.Minute, evilSummary+"\nsecond <line>")
	h := u.server(Options{}).Handler()
	for _, target := range []string{"/", "/?q=" + "%3Cscript%3E", "/machine/" + uuidOK} {
		_, body := get(t, h, http.MethodGet, target)
		for _, raw := range []string{evilUnit, "<img src=x", "<b>", "<line>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s: %q appears unescaped", target, raw)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;unit&#34;)&lt;/script&gt;") {
			t.Errorf("%s: the unit name is not shown escaped", target)
		}
	}
	_, body := get(t, h, http.MethodGet, "/machine/"+uuidOK)
	if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34; &#39;too&#39;") {
		t.Error("the failure's summary is not shown escaped")
	}
	// The shell sees the source name as one word, quoted.
	if !strings.Contains(body, `restore `+uuidOK+` &#39;it&#39;\&#39;&#39;s&lt;b&gt;&#39; &#39;it&#39;\&#39;&#39;s&lt;b&gt;_`) {
		t.Errorf("restore command not quoted for the shell:\n%s", regexp.MustCompile(`(?s)<pre class="command">.*?</pre>`).FindString(body))
	}
}

// TestOverview: each machine gets the state the staleness rule gives it,
// and the state filter, name filter, sort and pages select server-side.
func TestOverview(t *testing.T) {
	u := fiveMachines(t)
	s := u.server(Options{PageSize: 2})
	h := s.Handler()
	var ov Overview
	_, body := get(t, h, http.MethodGet, "/api/overview?sort=name")
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if ov.Machines != 5 || ov.Pages != 3 || len(ov.Page) != 2 {
		t.Fatalf("machines %d, pages %d, page %d: want 5, 3, 2", ov.Machines, ov.Pages, len(ov.Page))
	}
	states := map[string]string{}
	for page := 1; page <= 3; page++ {
		var p Overview
		_, body := get(t, h, http.MethodGet, "/api/overview?sort=name&page="+strconv.Itoa(page))
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Page {
			states[m.UUID] = m.State
		}
	}
	want := map[string]string{uuidOK: StateOK, uuidStale: StateStale, uuidNever: StateNever, uuidFail: StateFailing, uuidOrphan: StateOrphan}
	for uuid, st := range want {
		if states[uuid] != st {
			t.Errorf("machine %s: state %q, want %q", uuid, states[uuid], st)
		}
	}

	// Since when a machine is an orphan, as the key refresh recorded it.
	u.state.SetOrphans(map[string]monitor.Orphan{uuidOrphan: {Unit: "old1", Since: u.now.Add(-72 * time.Hour)}})
	var orph Overview
	_, body = get(t, h, http.MethodGet, "/api/overview?state=orphan")
	if err := json.Unmarshal([]byte(body), &orph); err != nil {
		t.Fatal(err)
	}
	if len(orph.Page) != 1 || !orph.Page[0].OrphanedSince.Equal(u.now.Add(-72*time.Hour)) {
		t.Errorf("orphans %+v, want %s orphaned since 72h before", orph.Page, uuidOrphan)
	}
	if _, page := get(t, h, http.MethodGet, "/?state=orphan"); !strings.Contains(page, "orphaned 3d") {
		t.Errorf("the overview does not say since when the orphan is one:\n%s", page)
	}
	// The default sort puts the worst first.
	_, body = get(t, h, http.MethodGet, "/api/overview")
	ov = Overview{}
	json.Unmarshal([]byte(body), &ov)
	if ov.Page[0].UUID != uuidStale || ov.Page[1].UUID != uuidNever {
		t.Errorf("worst first: got %s, %s; want stale, never", ov.Page[0].UUID, ov.Page[1].UUID)
	}
	// Filters, in the HTML page (no JavaScript needed).
	for _, tc := range []struct {
		query      string
		want, deny []string
	}{
		{"?state=never", []string{"new1"}, []string{"web1", "db1", "mail1"}},
		{"?state=orphan", []string{uuidOrphan, "ORPHAN"}, []string{"web1", "new1"}},
		{"?q=MAIL", []string{"mail1", "connection refused (code 10)"}, []string{"web1", "db1"}},
		{"?q=prod-www-web1", []string{"web1"}, []string{"mail1"}},
		{"?q=" + uuidStale[:8], []string{"db1", "STALE"}, []string{"mail1"}},
		{"?page=99", []string{"web1"}, []string{"db1"}}, // past the last page: the last
	} {
		_, body := get(t, h, http.MethodGet, "/"+tc.query)
		table := regexp.MustCompile(`(?s)<table id="machine-table".*?</table>`).FindString(body)
		for _, w := range tc.want {
			if !strings.Contains(table, w) {
				t.Errorf("%s: machines table lacks %q", tc.query, w)
			}
		}
		for _, d := range tc.deny {
			if strings.Contains(table, ">"+d+"<") {
				t.Errorf("%s: machines table shows %q", tc.query, d)
			}
		}
	}
	// A filter it does not know is refused, saying what it takes.
	for query, want := range map[string]string{
		"?state=bogus":                   `state &#34;bogus&#34;: want one of stale, never, failing, warning, orphan, ok`,
		"?sort=bogus":                    `sort &#34;bogus&#34;: want one of state, name, age, size`,
		"?page=-3":                       `page &#34;-3&#34;: want a number from 1`,
		"?page=x":                        `page &#34;x&#34;: want a number from 1`,
		"?q=" + strings.Repeat("a", 201): "q: longer than 200 bytes",
	} {
		res, body := get(t, h, http.MethodGet, "/"+query)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, want) || strings.Contains(body, "web1") {
			t.Errorf("%s: got %d, want 400 saying %s", query, res.StatusCode, want)
		}
		if res, _ := get(t, h, http.MethodGet, "/api/overview"+query); res.StatusCode != http.StatusBadRequest {
			t.Errorf("/api/overview%s: got %d, want 400", query, res.StatusCode)
		}
	}
	// Sizes and counts from the disk: web1 has two snapshots, its ledger 80 KiB.
	_, body = get(t, h, http.MethodGet, "/api/overview?q=web1")
	ov = Overview{}
	json.Unmarshal([]byte(body), &ov)
	if len(ov.Page) != 1 || len(ov.Page[0].Sources) != 1 || ov.Page[0].Sources[0].Snapshots != 2 || ov.Page[0].Sources[0].Bytes != 81920 {
		t.Errorf("web1: got %+v, want etc with 2 snapshots and 81920 bytes", ov.Page)
	}
}

// TestMachinePage: a machine's snapshots with their figures, the
// attempts with a failure's whole summary, the plots and the restore
// command of the latest snapshot.
func TestMachinePage(t *testing.T) {
	u := fiveMachines(t)
	h := u.server(Options{ConfigDir: "/etc/ts"}).Handler()
	_, body := get(t, h, http.MethodGet, "/machine/"+uuidOK)
	latest := "etc_" + u.now.Add(-2*time.Hour).Format("20060102-150405") + "_ab12"
	for _, want := range []string{
		"<code>" + latest + "</code> <span class=\"badge\">latest</span>",
		"turku-storage -c /etc/ts restore " + uuidOK + " etc " + latest,
		`<svg class="plot"`, "Duration of each backup of etc", "Bytes received for each backup of etc",
		"8.0 KiB", "3m00s",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("machine page lacks %q", want)
		}
	}
	if n := strings.Count(body, "<circle"); n != 4 {
		t.Errorf("got %d points in the plots, want 2 per plot", n)
	}
	_, body = get(t, h, http.MethodGet, "/machine/"+uuidFail)
	for _, want := range []string{"FAILING", "rsync: connection refused (code 10)\nmore lines", "failed"} {
		if !strings.Contains(body, want) {
			t.Errorf("failing machine's page lacks %q", want)
		}
	}
	var p MachinePage
	_, body = get(t, h, http.MethodGet, "/api/machine/"+uuidFail)
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Attempts) != 1 || p.Attempts[0].Success || len(p.Sources) != 1 || len(p.Sources[0].List) != 1 {
		t.Errorf("JSON: %d attempts, %d sources: want the failure and etc with one snapshot", len(p.Attempts), len(p.Sources))
	}
	// An orphan still has its page; a never backed-up machine too.
	for _, uuid := range []string{uuidOrphan, uuidNever} {
		if res, _ := get(t, h, http.MethodGet, "/machine/"+uuid); res.StatusCode != 200 {
			t.Errorf("machine %s: %d, want 200", uuid, res.StatusCode)
		}
	}
}

// TestRunning: a running backup's bytes and rate, and a waiting one, in
// /api/running and in the overview's live section.
func TestRunning(t *testing.T) {
	u := fiveMachines(t)
	u.state.BackupPhase(uuidOK, "web1", "etc", monitor.PhaseWaiting, nil)
	received, end := u.state.SessionStarted(monitor.ModeCheckin, uuidOK, "web1", "127.0.0.1:1", 1000, 0)
	defer end()
	u.state.BackupPhase(uuidOK, "web1", "etc", monitor.PhaseRunning, func() int64 { return 7 })
	u.state.BackupPhase(uuidFail, "mail1", "etc", monitor.PhaseWaiting, nil)
	received(3 << 20)
	u.now = u.now.Add(10 * time.Second)
	h := u.server(Options{}).Handler()
	var r Running
	_, body := get(t, h, http.MethodGet, "/api/running")
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Running) != 1 || r.Running[0].Bytes != 3<<20 || r.Running[0].BytesPerSecond != float64(3<<20)/10 ||
		r.Running[0].Files == nil || *r.Running[0].Files != 7 || len(r.Waiting) != 1 || r.Waiting[0].Machine != uuidFail {
		t.Errorf("got %s", body)
	}
	_, body = get(t, h, http.MethodGet, "/")
	live := regexp.MustCompile(`(?s)<section id="live">.*?</section>`).FindString(body)
	for _, want := range []string{"web1", "3.0 MiB", "307 KiB/s", "10s", "mail1"} {
		if !strings.Contains(live, want) {
			t.Errorf("live section lacks %q:\n%s", want, live)
		}
	}
}

// TestVolumes: each volume as df and df -i show it, and one the volume
// check found unusable stands out with its message.
func TestVolumes(t *testing.T) {
	u := newUnit(t)
	u.state = monitor.New(monitor.Options{Now: func() time.Time { return u.now }, Volumes: func() []monitor.Volume {
		return []monitor.Volume{
			{Name: "a", Path: "/srv/a", State: "ok", SizeBytes: 100 << 30, UsedBytes: 60 << 30, FreeBytes: 35 << 30, UsedPct: 63.2,
				MaxUsagePct: 95, Inodes: 1000, InodesFree: 250, InodeUsedPct: 75, MaxInodeUsagePct: 95, AcceptNew: true, HighWaterPct: 80},
			{Name: "b", Path: "/srv/b", State: "not mounted", Message: "volume b: /srv/b is not mounted", MaxUsagePct: 95},
		}
	}, SpooledReports: func() int { return 3 }})
	_, body := get(t, u.server(Options{}).Handler(), http.MethodGet, "/")
	vols := regexp.MustCompile(`(?s)<section id="volumes">.*?</section>`).FindString(body)
	for _, want := range []string{"/srv/a", "100 GiB", "60 GiB", "35 GiB", "63.2%", ">1000<", ">750<", ">250<", "75.0%", "up to 80%",
		`<span class="st-stale">not mounted</span>: volume b: /srv/b is not mounted`} {
		if !strings.Contains(vols, want) {
			t.Errorf("volumes lack %q:\n%s", want, vols)
		}
	}
	if keys := regexp.MustCompile(`(?s)<section id="keys">.*?</section>`).FindString(body); !strings.Contains(keys, `<dd class="st-warning">3</dd>`) {
		t.Errorf("spooled reports not shown:\n%s", keys)
	}
}
