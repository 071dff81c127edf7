package packaging

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the package (about a minute)")
	}
	for _, tool := range tools {
		// A missing tool fails: .ci/run installs them, and a skip would
		// count as a pass.
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install lintian systemd dpkg-dev, as .ci/run does)", tool)
		}
	}
}

func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage builds the package with build-deb.sh and checks its
// control data, its contents, the installed binary and the unit.
func TestDebianPackage(t *testing.T) {
	requireTools(t, "go", "git", "dpkg-deb", "gzip")
	const version = "1.2.3~test1"
	dist := t.TempDir()
	cmd := exec.Command("./build-deb.sh", version)
	cmd.Dir = "."
	cmd.Env = append(os.Environ(), "DIST="+dist, "GOARCH=amd64")
	out, err := cmd.CombinedOutput()
	t.Logf("build-deb.sh:\n%s", out)
	if err != nil {
		t.Fatalf("build-deb.sh: %v", err)
	}
	deb := filepath.Join(dist, "turku-storage_"+version+"_amd64.deb")
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, deb) {
		t.Errorf("build-deb.sh printed %q last, want the package path %s", got, deb)
	}

	info := command(t, "dpkg-deb", "-I", deb)
	for _, field := range []string{"Package: turku-storage", "Version: " + version, "Architecture: amd64", "Depends: rsync", "Section: admin"} {
		if !strings.Contains(info, "\n "+field+"\n") {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", field, info)
		}
	}
	if !strings.Contains(info, "conffiles") {
		t.Error("no conffiles: the example configuration must be one")
	}

	// Path and mode of what matters.
	contents := command(t, "dpkg-deb", "-c", deb)
	entries := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
		f := strings.Fields(line)
		entries[strings.TrimPrefix(f[len(f)-1], ".")] = f[0]
	}
	for path, mode := range map[string]string{
		"/usr/bin/turku-storage":                                      "-rwxr-xr-x",
		"/lib/systemd/system/turku-storage.service":                   "-rw-r--r--",
		"/etc/turku-storage/config.d/":                                "drwxr-xr-x",
		"/etc/turku-storage/config.d/10-storage.yaml.example":         "-rw-r--r--",
		"/var/lib/turku-storage/":                                     "drwx------",
		"/usr/share/man/man8/turku-storage.8.gz":                      "-rw-r--r--",
		"/usr/share/man/man8/turku-storage-serve.8.gz":                "-rw-r--r--",
		"/usr/share/man/man1/turku-storage-restore.1.gz":              "-rw-r--r--",
		"/usr/share/man/man1/turku-storage-status.1.gz":               "-rw-r--r--",
		"/usr/share/man/man5/turku-storage.conf.5.gz":                 "-rw-r--r--",
		"/usr/share/doc/turku-storage/README.md.gz":                   "-rw-r--r--",
		"/usr/share/doc/turku-storage/operations.md.gz":               "-rw-r--r--",
		"/usr/share/doc/turku-storage/configuration.md.gz":            "-rw-r--r--",
		"/usr/share/bash-completion/completions/turku-storage":        "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_turku-storage":            "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/turku-storage.fish":     "-rw-r--r--",
		"/usr/share/doc/turku-storage/copyright":                      "-rw-r--r--",
		"/usr/share/doc/turku-storage/changelog.gz":                   "-rw-r--r--",
		"/usr/share/doc/turku-storage/examples/prometheus-alerts.yml": "-rw-r--r--",
		"/usr/share/lintian/overrides/turku-storage":                  "-rw-r--r--",
	} {
		if got, ok := entries[path]; !ok || got != mode {
			t.Errorf("%s: mode %q, want %q", path, got, mode)
		}
	}
	for _, path := range []string{"/usr/share/man/man1/turku-storage-gen-man.1.gz", "/usr/share/man/man1/turku-storage-completion-powershell.1.gz",
		"/usr/share/man/man1/turku-storage.1.gz", "/usr/share/man/man1/turku-storage-serve.1.gz"} {
		if _, ok := entries[path]; ok {
			t.Errorf("%s is in the package", path)
		}
	}

	// Install into a scratch root: as root with dpkg itself (maintainer
	// scripts included), else by unpacking.
	root := t.TempDir()
	if os.Getuid() == 0 {
		for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
		t.Log(command(t, "dpkg", "--root="+root, "--log=/dev/null", "--force-depends", "--force-script-chrootless", "-i", deb))
	} else {
		command(t, "dpkg-deb", "-x", deb, root)
	}
	bin := filepath.Join(root, "usr/bin/turku-storage")
	var v struct {
		Version, Commit, Go string
		BuildDate           string `json:"build_date"`
		Rsync               struct{ Path, Version string }
	}
	vout := command(t, bin, "-c", t.TempDir(), "version", "--json")
	if err := json.Unmarshal([]byte(vout), &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, vout)
	}
	head := strings.TrimSpace(command(t, "git", "rev-parse", "HEAD"))
	if v.Version != version || !strings.HasPrefix(v.Commit, head) || v.BuildDate == "" || v.Go == "" {
		t.Errorf("installed version %+v, want %s from commit %s", v, version, head)
	}
	if _, err := exec.LookPath("rsync"); err == nil && v.Rsync.Version == "" {
		t.Errorf("installed binary found no rsync: %+v", v.Rsync)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Error("binary is dynamically linked (has an ELF interpreter)")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports %v", libs)
	}
	if page := command(t, "sh", "-c", "gzip -dc "+filepath.Join(root, "usr/share/man/man1/turku-storage-restore.1.gz")); !strings.Contains(page, "turku-agent-ping --restore") {
		t.Error("restore's man page lacks its long help")
	}
	// Every page: its own title and section, the build's date, the
	// package's version in the footer.
	th := regexp.MustCompile(`(?m)^\.TH "([^"]+)" "(\d)" "(\d{4}-\d\d-\d\d)" "turku-storage ` + regexp.QuoteMeta(version) + `" "Turku backup"$`)
	var pages int
	for path := range entries {
		m := regexp.MustCompile(`^/usr/share/man/man(\d)/(.+)\.(\d)\.gz$`).FindStringSubmatch(path)
		if m == nil {
			continue
		}
		pages++
		got := th.FindStringSubmatch(command(t, "gzip", "-dc", filepath.Join(root, path)))
		if got == nil || got[1] != strings.ToUpper(m[2]) || got[2] != m[1] || m[1] != m[3] {
			t.Errorf("%s: .TH %q, want title %s in section %s", path, got, strings.ToUpper(m[2]), m[1])
		}
	}
	if pages < 20 {
		t.Errorf("%d man pages, want one per command", pages)
	}
	if page := command(t, "gzip", "-dc", filepath.Join(root, "usr/share/man/man8/turku-storage-serve.8.gz")); !strings.Contains(page, ".SH FILES") || !strings.Contains(page, ".SH EXIT STATUS") {
		t.Error("serve's page lacks FILES or EXIT STATUS")
	}
	if page := command(t, "gzip", "-dc", filepath.Join(root, "usr/share/man/man5/turku-storage.conf.5.gz")); !strings.Contains(page, "max_concurrent_backups") {
		t.Error("turku-storage.conf(5) lacks the keys")
	}
	if doc := command(t, "gzip", "-dc", filepath.Join(root, "usr/share/doc/turku-storage/operations.md.gz")); !strings.HasPrefix(doc, "# ") {
		t.Error("operations.md.gz is not the guide")
	}
	// The example names only files the package installs.
	example := command(t, "cat", filepath.Join(root, "etc/turku-storage/config.d/10-storage.yaml.example"))
	for _, ref := range regexp.MustCompile(`/usr/share/doc/turku-storage/[\w./-]*[\w]`).FindAllString(example, -1) {
		if _, ok := entries[ref]; !ok {
			t.Errorf("the example configuration names %s, which the package does not install", ref)
		}
	}
	if strings.Contains(example, "docs/") {
		t.Error("the example configuration points at docs/ of a checkout")
	}
	if c := command(t, "cat", filepath.Join(root, "usr/share/bash-completion/completions/turku-storage")); !strings.Contains(c, "__complete") {
		t.Error("bash completion does not ask the binary (dynamic machine and source names)")
	}

	t.Run("lintian", func(t *testing.T) {
		requireTools(t, "lintian")
		out, err := exec.Command("lintian", "--fail-on", "error", deb).CombinedOutput()
		t.Logf("lintian:\n%s", out)
		if err != nil || regexp.MustCompile(`(?m)^E: `).Match(out) {
			t.Errorf("lintian reports errors: %v", err)
		}
	})
}

// TestUnitHardening: systemd-analyze scores the unit 3.0 ("OK") or better
// and verifies it without a complaint.
func TestUnitHardening(t *testing.T) {
	requireTools(t, "systemd-analyze")
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", "turku-storage.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for turku-storage\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > 3.0 {
		t.Errorf("exposure %.1f, want at most 3.0:\n%s", score, out)
	}

	// verify needs ExecStart to exist: point it at a stand-in binary.
	dir := t.TempDir()
	unit, err := os.ReadFile("turku-storage.service")
	if err != nil {
		t.Fatal(err)
	}
	stand := filepath.Join(dir, "turku-storage")
	os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755)
	path := filepath.Join(dir, "turku-storage.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/turku-storage", stand)), 0o644)
	out, err = exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitNotify: the packaged unit is the one docs/operations.md
// describes for systemd: serve's READY=1/WATCHDOG=1 are only heeded with
// Type=notify and WatchdogSec.
func TestUnitNotify(t *testing.T) {
	unit, err := os.ReadFile("turku-storage.service")
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			set[k] = v
		}
	}
	if set["Type"] != "notify" || set["WatchdogSec"] == "" || set["ExecReload"] == "" {
		t.Errorf("Type=%q WatchdogSec=%q ExecReload=%q; want Type=notify, a WatchdogSec and a reload", set["Type"], set["WatchdogSec"], set["ExecReload"])
	}
}

// TestUnitWritablePaths: the unit grants write access to no directory
// other local users share. /run/lock (1777) was granted for the old code's
// locks; a lock_dir there is for migrating only and takes a drop-in.
func TestUnitWritablePaths(t *testing.T) {
	unit, err := os.ReadFile("turku-storage.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch key {
		case "ReadWritePaths":
			for _, p := range strings.Fields(value) {
				if p = strings.TrimLeft(p, "-+"); p == "/run/lock" || p == "/run" || p == "/tmp" || p == "/var/tmp" || p == "/var/lock" {
					t.Errorf("ReadWritePaths grants %s, a directory every local user writes to", p)
				}
			}
		case "RestrictAddressFamilies":
			// The tunnel endpoints' peer lookup (tunnel/sockdiag_linux.go).
			if !slices.Contains(strings.Fields(value), "AF_NETLINK") {
				t.Errorf("RestrictAddressFamilies=%s: want AF_NETLINK for the tunnels' sock_diag lookups", value)
			}
		}
	}
}
