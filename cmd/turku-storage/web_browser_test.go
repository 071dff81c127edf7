package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/turku-backup/turku-storage/apiclient"
)

// browser is a headless Chromium driven through the DevTools protocol,
// with every console message, exception and browser log entry (CSP
// violations among them) collected.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex // guards msgs
	msgs []chromedp.ConsoleMessage
}

// chromiumPath finds Debian's chromium. Missing, the test fails: .ci/run
// installs it, and a dashboard never seen by a browser is not tested.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install it (apt-get install chromium; .ci/run does)")
	return ""
}

// newBrowser starts chromium with a window of w×h and a profile in a
// temporary directory; it is stopped when the test ends.
func newBrowser(t *testing.T, w, h int) *browser {
	t.Helper()
	profile, err := os.MkdirTemp("", "dashboard-chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(w, h),
		chromedp.DisableGPU,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	b := &browser{ctx: ctx}
	// Start the browser now, so the console is followed from the first page.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()      // closes the tab, ending the console subscription
		cancelAlloc() // stops chromium and waits for it
		<-done
		// Chromium's child processes may write in the profile for a moment after
		// it exits.
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(profile) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	})
	return b
}

// problems are the console messages of kind error or warning and the
// exceptions so far.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
			out = append(out, fmt.Sprintf("%s (%s %s:%d)", m.String(), m.Source, m.URL, m.Line))
		}
	}
	return out
}

func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// poll waits until the JavaScript expression is truthy and returns it.
func poll[T any](t *testing.T, b *browser, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(waitLong), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("browser: waiting for %s: %v\npage:\n%s", what, err, text)
	}
	return v
}

// until loads url until the overview's machine table satisfies cond; the
// page is rendered by the server, so seeing a change takes a new load.
func (b *browser) until(t *testing.T, url, what string, cond func(table string) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		b.do(t, "open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#machine-table")))
		table := b.text(t, "#machine-table")
		if cond(table) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser: %s: never shown at %s:\n%s", what, url, table)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the whole page as name (PNG) in the test's artifact
// directory, and under $TURKU_DASHBOARD_SCREENSHOTS when set.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("TURKU_DASHBOARD_SCREENSHOTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", filepath.Join(d, name))
	}
}

// TestDashboardInBrowser drives the dashboard of a real serve with a real
// browser: two machines backed up by real agents (rsync daemon, OpenSSH
// client), one slowly, one failing; the live section follows the slow
// backup without a reload, the machine page shows the snapshots and the
// plots, the page runs without a CSP violation or script error, and a
// failure is still shown after a restart.
func TestDashboardInBrowser(t *testing.T) {
	api, s := newAPISite(t, map[string]any{"web_listen": "127.0.0.1:0"})
	const slowUUID = "0d9b4e3c-1f2a-4b5c-8d7e-6f5a4b3c2d1e"
	fast := newAgent(t, api, machineUUID, "web1", map[string]string{"passwd": "root:x:0:0\n", "hosts": "127.0.0.1 localhost\n"})
	// 48 KiB/s from the agent's daemon: about sixteen seconds.
	slow := slowAgent(t, api, slowUUID, "db1", 768<<10, 48)
	api.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc"})
	api.AddSource(slowUUID, "etc", apiclient.Source{Path: "/etc"})
	hostKeys := registered(t, api, s)
	d := startServe(t, s)
	if d.web == nil {
		t.Fatal("serve did not report the dashboard's address")
	}
	base := "http://" + d.web.String()

	mustPing := func(a *agent, password string) {
		t.Helper()
		// The last report must have reached the API first: its answer
		// marks the source done, and would undo SetDue.
		delivered := `msg="report delivered" machine=` + a.uuid
		n := d.log.Count(delivered)
		api.SetDue(a.uuid, "etc", true)
		if res := a.pingWithPassword(t, d, hostKeys, password).Wait(t, waitLong); res.ExitCode != 0 && password == "etc-pass" {
			t.Fatalf("ssh exit %d", res.ExitCode)
		}
		d.log.WaitFor(t, delivered, n+1, waitLong)
	}
	mustPing(fast, "etc-pass")
	mustPing(fast, "etc-pass")

	b := newBrowser(t, 1200, 900)
	// Both machines: web1 with its two snapshots (the dashboard reads a
	// machine's snapshots again within a second of its backup), db1
	// assigned and never backed up yet.
	b.until(t, base+"/", "web1's two snapshots counted", func(table string) bool {
		return strings.Contains(table, "\tsuccess\t2\t")
	})
	table := b.text(t, "#machine-table")
	for _, want := range []string{"web1", "db1", "NEVER BACKED UP", machineUUID, slowUUID} {
		if !strings.Contains(table, want) {
			t.Errorf("overview lacks %q:\n%s", want, table)
		}
	}

	// The slow backup appears in the live section, and its bytes grow,
	// without the page being loaded again.
	marker := `document.body.dataset.loaded = "first"; true`
	b.do(t, "mark the page", chromedp.Evaluate[chromedp.Void](marker))
	slowSession := slow.ping(t, d, hostKeys)
	first := poll[string](t, b, "db1 running in the live section", `(() => {
		const t = document.querySelector("#running tbody").textContent;
		return t.includes("db1") && !t.includes(" 0 B") ? t : "";
	})()`)
	poll[bool](t, b, "the bytes of db1 to grow", fmt.Sprintf(`(() => {
		const t = document.querySelector("#running tbody").textContent;
		return t.includes("db1") && t !== %q;
	})()`, first))
	if got := poll[string](t, b, "the same page", `document.body.dataset.loaded`); got != "first" {
		t.Errorf("the page was reloaded (%q): the live section must update in place", got)
	}
	if live := b.text(t, "#live-updated"); !strings.Contains(live, "(live)") {
		t.Errorf("live section not refreshed by app.js: %q", live)
	}
	b.screenshot(t, "dashboard-overview.png")
	if res := slowSession.Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("slow agent: ssh exit %d", res.ExitCode)
	}
	poll[bool](t, b, "the live section empty again", `document.querySelector("#running tbody").textContent.includes("No backup running.")`)

	// A machine page: its snapshots (as on disk), the plots, the restore
	// command.
	snaps, err := filepath.Glob(filepath.Join(s.volume, "*", "etc.snapshots", "etc_*.json"))
	if err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots on disk: %v, %v; want 3", snaps, err)
	}
	b.do(t, "open web1's page", chromedp.Navigate(base+"/machine/"+machineUUID), chromedp.WaitVisible(chromedp.CSS("svg.plot")))
	page := b.text(t, "main")
	found := 0
	for _, p := range snaps {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		if strings.Contains(p, machineUUID) {
			found++
			if !strings.Contains(page, name) {
				t.Errorf("machine page lacks snapshot %s", name)
			}
		}
	}
	if found != 2 {
		t.Errorf("web1 has %d snapshots on disk, want 2", found)
	}
	circles := poll[int](t, b, "points in the plots", `document.querySelectorAll("svg.plot circle").length`)
	if circles != 4 {
		t.Errorf("got %d points in web1's plots, want 2 backups × 2 plots", circles)
	}
	if !strings.Contains(page, "turku-storage -c "+s.dir+" restore "+machineUUID+" etc etc_") {
		t.Errorf("machine page lacks the restore command:\n%s", page)
	}
	b.screenshot(t, "dashboard-machine.png")

	// At a phone's width and a desktop's the pages fit the window: only
	// a wide table scrolls, inside its own box.
	for _, width := range []int64{390, 1200} {
		for _, url := range []string{base + "/", base + "/machine/" + machineUUID} {
			b.do(t, fmt.Sprintf("open %s at %d px", url, width), chromedp.EmulateViewport(width, 844), chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
			fits, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			if err != nil || !fits {
				w, _ := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
				t.Errorf("%s at %d px: the page is %d px wide (%v)", url, width, w, err)
			}
		}
	}
	b.do(t, "back to a desktop window", chromedp.EmulateReset())

	// A failed backup: the agent's daemon refuses the password.
	mustPing(fast, "wrong-pass")
	b.until(t, base+"/?q=web1", "web1 failing", func(table string) bool {
		return strings.Contains(table, "FAILING") && strings.Contains(table, "failed")
	})
	if p := b.problems(); len(p) > 0 {
		t.Errorf("browser console:\n%s", strings.Join(p, "\n"))
	}

	// After a restart the history tells the failure again.
	d.stop(t)
	d2 := startServe(t, s)
	base = "http://" + d2.web.String()
	// serve seeds its state from the history in the background.
	b.until(t, base+"/?q=web1", "web1's failure after the restart", func(table string) bool {
		return strings.Contains(table, "FAILING") && strings.Contains(table, "failed")
	})
	if p := b.problems(); len(p) > 0 {
		t.Errorf("browser console:\n%s", strings.Join(p, "\n"))
	}

	// The console is really followed: an inline script the policy
	// blocks is reported.
	b.do(t, "break the policy", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.createElement("script");
		s.textContent = "document.body.dataset.inline = 'ran'";
		document.body.appendChild(s);
	})()`))
	deadline := time.Now().Add(waitLong)
	var violation string
	for violation == "" {
		for _, p := range b.problems() {
			if strings.Contains(p, "Content Security Policy") {
				violation = p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CSP violation reported for an inline script (console: %q): the console check proves nothing", b.problems())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ran, _ := chromedp.Run(b.ctx, chromedp.Evaluate[*string](`document.body.dataset.inline`)); ran != nil {
		t.Error("an inline script ran despite the policy")
	}
	t.Logf("the policy blocked the inline script: %s", violation)
}
