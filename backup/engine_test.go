package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// recordingRsync is a fake rsync that records its arguments, filter file
// and password in dir, writes one file into the destination, prints a
// few lines and exits with code.
func recordingRsync(t *testing.T, dir string, code int, output string) string {
	return agenttest.Script(t, fmt.Sprintf(`out=%q
: > "$out/args"
for a; do
	printf '%%s\n' "$a" >> "$out/args"
	dest=$a
	case $a in --filter=merge\ *) cp "${a#--filter=merge }" "$out/filter"; echo "${a#--filter=merge }" > "$out/filter-path";; esac
done
printf '%%s' "$RSYNC_PASSWORD" > "$out/password"
printf '%%s' "${HOME-unset}" > "$out/home"
mkdir -p "$dest" && echo data > "${dest}file"
cat <<'END_OF_OUTPUT'
%s
END_OF_OUTPUT
exit %d
`, dir, output, code))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPullLinkDest(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	src := map[string]apiclient.Source{"etc": {
		Retention: "last 5 snapshots", Filter: []string{"- *.tmp"}, Exclude: []string{"cache/"},
		Bwlimit: "100", PreserveHardLinks: true,
	}}
	env := newTestEnv(t, src, func(o *Options) { o.RsyncCommand = recordingRsync(t, rec, 0, "receiving incremental file list") })
	ctx := t.Context()

	if err := env.e.Pull(ctx, env.request(creds("etc"))); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := env.api.onlyReport(t).Snapshot
	env.api.reset()
	if err := env.e.Pull(ctx, env.request(creds("etc"))); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	rep := env.api.onlyReport(t)
	mdir := env.machineDir()
	snapDir := filepath.Join(mdir, "etc.snapshots")

	filterPath := strings.TrimSpace(readFile(t, filepath.Join(rec, "filter-path")))
	wantArgs := []string{
		"--archive", "--compress", "--numeric-ids", "--delete", "--delete-excluded", "--verbose", "--stats",
		"--link-dest=" + filepath.Join(snapDir, first),
		"--hard-links",
		"--filter=merge " + filterPath,
		"--bwlimit=100",
		"rsync://user-etc@127.0.0.1:12345/etc/",
		filepath.Join(mdir, "etc") + "/",
	}
	if diff := cmp.Diff(wantArgs, strings.Split(strings.TrimSpace(readFile(t, filepath.Join(rec, "args"))), "\n")); diff != "" {
		t.Errorf("rsync args (-want +got):\n%s", diff)
	}
	if got, want := readFile(t, filepath.Join(rec, "filter")), "- *.tmp\n- cache/\n"; got != want {
		t.Errorf("filter file %q, want %q", got, want)
	}
	if _, err := os.Stat(filterPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("filter file %s not removed: %v", filterPath, err)
	}
	if got := readFile(t, filepath.Join(rec, "password")); got != "pw-etc" {
		t.Errorf("RSYNC_PASSWORD = %q", got)
	}
	if got := readFile(t, filepath.Join(rec, "home")); got != "unset" {
		t.Errorf("rsync inherited HOME=%q; want a minimal environment", got)
	}

	if !rep.Success || rep.Summary != "Base snapshot: "+first+"\n" || !strings.HasPrefix(rep.Snapshot, "etc_20261125-0315") {
		t.Errorf("report %+v", rep)
	}
	if rep.TimeEnd <= rep.TimeBegin {
		t.Errorf("time_end %v not after time_begin %v", rep.TimeEnd, rep.TimeBegin)
	}
	if got, _ := os.Readlink(filepath.Join(snapDir, "latest")); got != rep.Snapshot {
		t.Errorf("latest -> %q, want %q", got, rep.Snapshot)
	}
	info := readFile(t, filepath.Join(snapDir, rep.Snapshot+".json"))
	if !strings.Contains(info, `"base": "`+first+`"`) || !strings.Contains(info, `"name": "`+rep.Snapshot+`"`) || !strings.Contains(info, `+00:00"`) {
		t.Errorf(".json:\n%s", info)
	}
	if _, err := os.Stat(filepath.Join(mdir, "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("working tree still there after success: %v", err)
	}
	snaps, err := ListSnapshots(mdir, "etc", time.UTC)
	if err != nil || len(snaps) != 2 || !snaps[1].Latest || snaps[1].Base != first {
		t.Errorf("ListSnapshots = %+v, %v", snaps, err)
	}
	if got, _ := os.Readlink(filepath.Join(env.varDir, "machines", testUUID)); got != mdir {
		t.Errorf("machines/%s -> %q, want %q", testUUID, got, mdir)
	}
	if got, _ := os.Readlink(filepath.Join(env.varDir, "machines", "prod-www-web1")); got != testUUID {
		t.Errorf("machines/prod-www-web1 -> %q", got)
	}
	wantLog := []string{
		"INFO: Sources to back up: etc", "INFO: Begin: web1 etc", "INFO: End: web1 etc", "INFO: Done",
		"INFO: Sources to back up: etc", "INFO: Begin: web1 etc", "INFO: End: web1 etc", "INFO: Done",
	}
	if diff := cmp.Diff(wantLog, env.agent.lines()); diff != "" {
		t.Errorf("session log (-want +got):\n%s", diff)
	}
	if d, err := env.e.MachineDir(testUUID); err != nil || d != mdir {
		t.Errorf("MachineDir = %q, %v", d, err)
	}
	if s, err := ListSources(mdir); err != nil || !cmp.Equal(s, []string{"etc"}) {
		t.Errorf("ListSources = %q, %v", s, err)
	}
}

func TestPullSnapshotModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configMode string
		src        apiclient.Source
		want       string // the mode flag, "" for link-dest without base
	}{
		{name: "default", want: ""},
		{name: "rotating", src: apiclient.Source{LargeRotatingFiles: true}, want: "--inplace"},
		{name: "modifying", src: apiclient.Source{LargeModifyingFiles: true}, want: "--inplace"},
		{name: "source overrides", src: apiclient.Source{LargeModifyingFiles: true, SnapshotMode: "link-dest"}, want: ""},
		{name: "config none", configMode: "none", want: "--inplace"},
		{name: "config none source link-dest", configMode: "none", src: apiclient.Source{SnapshotMode: "link-dest"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := t.TempDir()
			env := newTestEnv(t, map[string]apiclient.Source{"etc": tt.src}, func(o *Options) {
				o.RsyncCommand = recordingRsync(t, rec, 0, "")
				o.SnapshotMode = tt.configMode
			})
			if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
				t.Fatal(err)
			}
			args := readFile(t, filepath.Join(rec, "args"))
			if got := strings.Contains(args, "--inplace\n"); got != (tt.want == "--inplace") {
				t.Errorf("args:\n%s\nwant mode flag %q", args, tt.want)
			}
			rep := env.api.onlyReport(t)
			_, statErr := os.Stat(filepath.Join(env.machineDir(), "etc.snapshots"))
			if tt.want == "--inplace" {
				if rep.Snapshot != "" || rep.Summary != "" || statErr == nil {
					t.Errorf("none mode made a snapshot: %+v, %v", rep, statErr)
				}
				if readFile(t, filepath.Join(env.machineDir(), "etc", "file")) != "data\n" {
					t.Error("none mode: working tree not updated")
				}
			} else if rep.Snapshot == "" {
				t.Errorf("link-dest mode made no snapshot: %+v", rep)
			}
		})
	}
}

// TestPullBadInput feeds untrusted input that must fail the source with a
// clear summary, without running rsync or creating anything on disk.
func TestPullBadInput(t *testing.T) {
	t.Parallel()
	good := apiclient.Source{}
	tests := []struct {
		name    string
		source  string
		src     apiclient.Source
		creds   map[string]agentproto.Credential
		unit    string
		want    string
		uuidArg string
	}{
		{name: "no credentials", source: "etc", src: good, want: `Cannot find authentication for source "etc"`},
		{name: "empty password", source: "etc", src: good, creds: map[string]agentproto.Credential{"etc": {Username: "u"}},
			want: `Cannot find authentication for source "etc"`},
		{name: "username with @", source: "etc", src: good, creds: map[string]agentproto.Credential{"etc": {Username: "u@evil", Password: "p"}},
			want: `username "u@evil" contains '@', '/' or ':'`},
		{name: "source dotdot", source: "..", src: good, want: `source name ".." is not a usable file name`},
		{name: "source dot", source: ".", src: good, want: `source name "." is not a usable file name`},
		{name: "source slash", source: "a/../../x", src: good, want: `source name "a/../../x" contains '/'`},
		{name: "source NUL", source: "a\x00", src: good, want: `source name "a\x00" contains a control character`},
		{name: "source snapshots", source: "etc.snapshots", src: good, want: `source name "etc.snapshots" ends in ".snapshots"`},
		{name: "merge filter", source: "etc", src: apiclient.Source{Filter: []string{"merge,- /etc/shadow"}},
			want: `filter rule "merge,- /etc/shadow": merge rules read files on the storage unit and are not allowed`},
		{name: "short merge filter", source: "etc", src: apiclient.Source{Filter: []string{".- /etc/shadow"}},
			want: `filter rule ".- /etc/shadow": merge rules read files on the storage unit and are not allowed`},
		{name: "dir-merge", source: "etc", src: apiclient.Source{Filter: []string{"dir-merge,n- x"}},
			want: `filter rule "dir-merge,n- x": merge rules read files on the storage unit and are not allowed`},
		{name: "per-dir short", source: "etc", src: apiclient.Source{Filter: []string{":n- .rsync-filter"}},
			want: `filter rule ":n- .rsync-filter": merge rules read files on the storage unit and are not allowed`},
		{name: "newline exclude", source: "etc", src: apiclient.Source{Exclude: []string{"x\n. /etc/shadow"}},
			want: `exclude "x\n. /etc/shadow": filter rule "- x\n. /etc/shadow" contains a line break or NUL`},
		{name: "CR filter", source: "etc", src: apiclient.Source{Filter: []string{"- x\r. /etc/shadow"}},
			want: `filter rule "- x\r. /etc/shadow" contains a line break or NUL`},
		{name: "bwlimit injection", source: "etc", src: apiclient.Source{Bwlimit: "10 --rsh=evil"},
			want: `bwlimit "10 --rsh=evil" is not a size rsync accepts`},
		{name: "unknown mode", source: "etc", src: apiclient.Source{SnapshotMode: "zfs"}, want: `unknown snapshot mode "zfs"`},
		{name: "unit dotdot", source: "etc", src: good, unit: "..", want: `unit name ".." is not a usable file name`},
		{name: "unit empty", source: "etc", src: good, unit: "<empty>", want: "unit name is empty"},
		{name: "env dot", source: "etc", src: good, unit: "web1", want: `environment name "." is not a usable file name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := t.TempDir()
			env := newTestEnv(t, map[string]apiclient.Source{tt.source: tt.src}, func(o *Options) {
				o.RsyncCommand = recordingRsync(t, rec, 0, "")
			})
			switch {
			case tt.unit == "<empty>":
				env.api.machine.UnitName = ""
			case tt.unit != "":
				env.api.machine.UnitName = tt.unit
			}
			if tt.name == "env dot" {
				env.api.machine.EnvironmentName = "."
			}
			c := tt.creds
			if c == nil && !strings.HasPrefix(tt.name, "no credentials") {
				c = creds(tt.source)
			}
			err := env.e.Pull(t.Context(), env.request(c))
			if err == nil {
				t.Fatal("Pull succeeded")
			}
			rep := env.api.onlyReport(t)
			if rep.Success || rep.Summary != tt.want+"\n" || rep.Snapshot != "" {
				t.Errorf("report %+v, want failure with summary %q", rep, tt.want)
			}
			if _, err := os.Stat(filepath.Join(rec, "args")); err == nil {
				t.Error("rsync ran")
			}
			// The failure report passed through the spool, which stays
			// (empty) for the next.
			if got := listTree(t, env.varDir); got != nil && !slices.Equal(got, []string{"reports"}) {
				t.Errorf("var dir changed: %q", got)
			}
			if got := listTree(t, env.volume); got != nil {
				t.Errorf("volume changed: %q", got)
			}
			if !strings.Contains(env.agent.String(), "ERROR: Source ") {
				t.Errorf("agent not told:\n%s", env.agent.String())
			}
		})
	}
}

func TestPullBadMachine(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, nil)
	for _, uuid := range []string{"", ".", "..", "a/b", "../x", "a\x00"} {
		req := env.request(creds("etc"))
		req.Machine = uuid
		if err := env.e.Pull(t.Context(), req); err == nil {
			t.Errorf("Pull(%q) succeeded", uuid)
		}
		if _, err := env.e.MachineDir(uuid); err == nil {
			t.Errorf("MachineDir(%q) succeeded", uuid)
		}
	}
	if got := env.api.got(); len(got) != 0 {
		t.Errorf("reports sent: %+v", got)
	}
	if got := listTree(t, env.varDir); got != nil {
		t.Errorf("var dir changed: %q", got)
	}
}

func TestPullRsyncResults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		output  string
		success bool
		summary string
	}{
		{name: "ok", code: 0, success: true, summary: ""},
		{name: "vanished", code: 24, output: "file has vanished: \"/etc/x\"", success: true, summary: ""},
		{name: "disk full", code: 11, output: "rsync: write failed on \"/vol/etc/big\": No space left on device (28)\nrsync error: error in file IO (code 11)",
			summary: "rsync exited with return code 11\nrsync: write failed on \"/vol/etc/big\": No space left on device (28)\nrsync error: error in file IO (code 11)\n"},
		{name: "auth", code: 5, output: "@ERROR: auth failed on module etc",
			summary: "rsync exited with return code 5\n@ERROR: auth failed on module etc\n" +
				"meaning: the agent's rsync daemon refused the source's user name or password: the agent's configuration and the coordinator disagree (run turku-update-config on the agent)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := t.TempDir()
			env := newTestEnv(t, map[string]apiclient.Source{"etc": {}}, func(o *Options) {
				o.RsyncCommand = recordingRsync(t, rec, tt.code, tt.output)
			})
			err := env.e.Pull(t.Context(), env.request(creds("etc")))
			if (err == nil) != tt.success {
				t.Fatalf("Pull: %v, want success %v", err, tt.success)
			}
			rep := env.api.onlyReport(t)
			if rep.Success != tt.success {
				t.Errorf("report success %v, want %v", rep.Success, tt.success)
			}
			if tt.success {
				if rep.Snapshot == "" {
					t.Error("no snapshot")
				}
				return
			}
			if rep.Summary != tt.summary {
				t.Errorf("summary %q, want %q", rep.Summary, tt.summary)
			}
			if rep.Snapshot != "" {
				t.Errorf("snapshot %q after failure", rep.Snapshot)
			}
			if snaps, _ := ListSnapshots(env.machineDir(), "etc", time.UTC); len(snaps) != 0 {
				t.Errorf("snapshots after failure: %+v", snaps)
			}
			if readFile(t, filepath.Join(env.machineDir(), "etc", "file")) != "data\n" {
				t.Error("working tree not kept")
			}
			want := fmt.Sprintf("ERROR: Source etc: rsync exited with return code %d", tt.code)
			if !strings.Contains(env.agent.String(), want) {
				t.Errorf("session log lacks %q:\n%s", want, env.agent.String())
			}
		})
	}
}

func TestPullRetention(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {Retention: "last 2 snapshots"}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
	})
	snapDir := filepath.Join(env.machineDir(), "etc.snapshots")
	old := []dirEntry{
		ours(time.UTC, "2026-11-20 03:00:00", "0001"),
		ours(time.UTC, "2026-11-21 03:00:00", "0002"),
		ours(time.UTC, "2026-11-22 03:00:00", "0003"),
		{name: "1424392089.43"},
		{name: "keep-save"},
		{name: "_delete-etc_20261101-030000_dead"},
	}
	for _, e := range old {
		if err := os.MkdirAll(filepath.Join(snapDir, e.name, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(snapDir, e.name, "sub", "f"), []byte("x"), 0o444); err != nil {
			t.Fatal(err)
		}
		if e.json != "" {
			if err := os.WriteFile(filepath.Join(snapDir, e.name+".json"), []byte(e.json), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(snapDir, "etc_20261101-030000_dead.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(snapDir, "1424392089.43", "sub"), 0o555); err != nil {
		t.Fatal(err)
	}

	if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
		t.Fatal(err)
	}
	rep := env.api.onlyReport(t)
	want := "Base snapshot: etc_20261122-030000_0003\n" +
		"Removed old snapshot: 1424392089.43\n" +
		"Removed old snapshot: etc_20261120-030000_0001\n" +
		"Removed old snapshot: etc_20261121-030000_0002\n"
	if rep.Summary != want {
		t.Errorf("summary:\n%s\nwant:\n%s", rep.Summary, want)
	}
	var got []string
	for _, p := range listTree(t, snapDir) {
		if !strings.Contains(p, "/") {
			got = append(got, p)
		}
	}
	wantTree := []string{
		"etc_20261122-030000_0003", "etc_20261122-030000_0003.json",
		rep.Snapshot, rep.Snapshot + ".json", "keep-save", "latest",
	}
	if diff := cmp.Diff(sortedCopy(wantTree), got); diff != "" {
		t.Errorf("snapshot dir (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestPullRetentionError(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	env := newTestEnv(t, map[string]apiclient.Source{"etc": {Retention: "last 1 snapshots, forever"}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
	})
	for range 2 {
		if err := env.e.Pull(t.Context(), env.request(creds("etc"))); err != nil {
			t.Fatal(err)
		}
	}
	reps := env.api.got()
	if len(reps) != 2 || !strings.Contains(reps[1].Report.Summary, "Retention not applied, no snapshot removed: retention item \"forever\"") {
		t.Fatalf("reports %+v", reps)
	}
	if snaps, _ := ListSnapshots(env.machineDir(), "etc", time.UTC); len(snaps) != 2 {
		t.Errorf("got %d snapshots, want both kept", len(snaps))
	}
}

func TestPullCheckinFailure(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	env.api.checkinErr = &apiclient.Error{Call: "storage_ping_checkin", Status: 403, Body: "Bad auth"}
	err := env.e.Pull(t.Context(), env.request(nil))
	if !errors.Is(err, apiclient.ErrBadAuth) {
		t.Fatalf("got %v, want ErrBadAuth", err)
	}
	if diff := cmp.Diff([]string{"ERROR: Checkin with the API failed"}, env.agent.lines()); diff != "" {
		t.Error(diff)
	}
}

func TestPullNothingDue(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, nil, nil)
	if err := env.e.Pull(t.Context(), env.request(nil)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"INFO: No sources to back up now", "INFO: Done"}, env.agent.lines()); diff != "" {
		t.Error(diff)
	}
	if got := listTree(t, env.varDir); got != nil {
		t.Errorf("var dir changed: %q", got)
	}
}

func TestPullSourceOrderAndPartialFailure(t *testing.T) {
	t.Parallel()
	rec := t.TempDir()
	env := newTestEnv(t, map[string]apiclient.Source{"b": {}, "a": {}, "c": {Filter: []string{". /etc/x"}}}, func(o *Options) {
		o.RsyncCommand = recordingRsync(t, rec, 0, "")
	})
	err := env.e.Pull(t.Context(), env.request(creds("a", "b", "c")))
	if err == nil || !strings.Contains(err.Error(), "sources not backed up: c") {
		t.Fatalf("got %v", err)
	}
	// Reports are delivered in the background, each by its own sender, so
	// they may arrive in any order; the order sources are pulled in is the
	// order of the agent's Begin lines.
	var got []string
	for _, r := range env.api.got() {
		got = append(got, fmt.Sprintf("%s=%v", r.Source, r.Report.Success))
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"a=true", "b=true", "c=false"}, got); diff != "" {
		t.Error(diff)
	}
	l := env.agent.lines()
	if len(l) < 1 || l[0] != "INFO: Sources to back up: a, b, c" {
		t.Errorf("session log %q", l)
	}
	var begun []string
	for _, line := range l {
		if src, ok := strings.CutPrefix(line, "INFO: Begin: web1 "); ok {
			begun = append(begun, src)
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, begun); diff != "" {
		t.Errorf("pull order (-want +got):\n%s\nsession log %q", diff, l)
	}
}
