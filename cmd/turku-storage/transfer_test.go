package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// backupOnce runs one real backup of a through d and waits for its
// report (the n-th delivered).
func backupOnce(t *testing.T, a *agent, api *apitest.Server, d *daemonUnderTest, hostKeys []string, n int) apitest.Report {
	t.Helper()
	api.SetDue(a.uuid, "etc", true)
	if res := a.ping(t, d, hostKeys).Wait(t, waitLong); res.ExitCode != 0 {
		t.Fatalf("backup %d: ssh exit %d", n, res.ExitCode)
	}
	d.log.WaitFor(t, `msg="report delivered"`, n, waitLong)
	reports := api.Reports()
	r := reports[len(reports)-1]
	if !r.Success {
		t.Fatalf("backup %d failed: %s", n, r.Summary)
	}
	return r
}

// TestSendReceiveBetweenUnits: three real backups on one unit (files
// mostly unchanged, so the snapshots share inodes), sent to a second
// unit; the copy has the same content and the same hard links between
// snapshots; damaged and duplicate streams are refused with nothing
// changed; the next real backup on the second unit is incremental on the
// received latest.
func TestSendReceiveBetweenUnits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := map[string]string{}
	for i := range 60 {
		files[fmt.Sprintf("d%d/f%d", i%6, i)] = strings.Repeat(fmt.Sprintf("file %d\n", i), 50+i)
	}
	api1 := apitest.New()
	t.Cleanup(api1.Close)
	s1 := newSite(t, map[string]any{"api_url": api1.BaseURL()})
	a := newAgent(t, api1, machineUUID, "web1", files)
	api1.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Retention: "last 10 snapshots"})
	hostKeys1 := registered(t, api1, s1)
	d1 := startServe(t, s1)
	var snaps []string
	for i := 1; i <= 3; i++ {
		if i > 1 {
			os.WriteFile(filepath.Join(a.data, "changing"), []byte(fmt.Sprintf("run %d\n", i)), 0o644)
		}
		snaps = append(snaps, backupOnce(t, a, api1, d1, hostKeys1, i).Snapshot)
	}
	dir1 := filepath.Join(s1.volume, machineUUID)
	snapPath := func(dir, snap, f string) string { return filepath.Join(dir, "etc.snapshots", snap, f) }
	if agenttest.Inode(t, snapPath(dir1, snaps[0], "d1/f1")) != agenttest.Inode(t, snapPath(dir1, snaps[2], "d1/f1")) {
		t.Fatal("the backups did not share inodes: nothing to test")
	}
	d1.stop(t)

	// Unit 2: its own config, var_dir and volume; the coordinator has
	// moved the machine to it.
	api2 := apitest.New()
	t.Cleanup(api2.Close)
	s2 := newSite(t, map[string]any{"api_url": api2.BaseURL()})
	api2.AddMachine("primary", machineUUID, apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: a.key.Authorized})
	api2.AddSource(machineUUID, "etc", apiclient.Source{Path: "/etc", Retention: "last 10 snapshots"})
	hostKeys2 := registered(t, api2, s2)
	// What unit 2 holds: every file of its var_dir and volume with its
	// state (directories by name: creating and removing the temporary
	// tree moves the volume's mtime). The lock directory is left out: a
	// receive takes the machine's lock, whose file stays, as a backup's.
	volume2 := func() map[string]string {
		out := map[string]string{}
		for p, st := range treeState(t, filepath.Dir(s2.volume)) {
			if strings.HasPrefix(p, s2.lockDir) {
				continue
			}
			if strings.HasPrefix(st, "d") {
				st = "directory"
			}
			out[p] = st
		}
		return out
	}

	// send to standard output, by unit name.
	sent := run(t, ctx, nil, "-c", s1.dir, "send", "web1")
	if sent.code != 0 || !strings.Contains(sent.stderr, "sent machine "+machineUUID+" (web1)") {
		t.Fatalf("send: exit %d, stderr %q", sent.code, sent.stderr)
	}
	stream := []byte(sent.stdout)
	streamFile := filepath.Join(t.TempDir(), "web1.stream")
	os.WriteFile(streamFile, stream, 0o600)

	// Damaged streams first: refused, nothing changed on unit 2.
	before := volume2()
	for _, tt := range []struct {
		name, data, want string
	}{
		{"truncated", string(stream[:len(stream)/2]), "truncated or corrupt"},
		{"corrupt", string(stream[:len(stream)/2]) + "X" + string(stream[len(stream)/2+1:]), "truncated or corrupt"},
	} {
		r := runStdin(t, tt.data, "-c", s2.dir, "receive")
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%s stream: exit %d, stderr %q, want a refusal saying %q", tt.name, r.code, r.stderr, tt.want)
		}
		if diff := cmp.Diff(before, volume2()); diff != "" {
			t.Errorf("%s stream changed unit 2:\n%s", tt.name, diff)
		}
	}

	r := runStdin(t, string(stream), "-c", s2.dir, "receive", "--sync", machineUUID)
	if r.code != 0 || !strings.Contains(r.stdout, "received machine "+machineUUID+" (web1) from primary") {
		t.Fatalf("receive: exit %d, stdout %q", r.code, r.stdout)
	}
	dir2 := filepath.Join(s2.volume, machineUUID)
	if target, err := os.Readlink(filepath.Join(s2.varDir, "machines", machineUUID)); err != nil || target != dir2 {
		t.Fatalf("machines/%s -> %q, %v; want %s", machineUUID, target, err, dir2)
	}
	if target, err := os.Readlink(filepath.Join(s2.varDir, "machines", "web1")); err != nil || target != machineUUID {
		t.Errorf("name link web1 -> %q, %v", target, err)
	}
	if diff := cmp.Diff(agenttest.Tree(t, dir1), agenttest.Tree(t, dir2)); diff != "" {
		t.Fatalf("received machine differs (-sent +received):\n%s", diff)
	}

	// The same stream again, from a file: refused, naming the machine.
	before = volume2()
	if r := run(t, ctx, nil, "-c", s2.dir, "receive", "-i", streamFile); r.code == 0 || !strings.Contains(r.stderr, machineUUID+": machine already has data on this storage unit") {
		t.Errorf("duplicate receive: exit %d, stderr %q", r.code, r.stderr)
	}
	if diff := cmp.Diff(before, volume2()); diff != "" {
		t.Errorf("duplicate receive changed unit 2:\n%s", diff)
	}

	// The next real backup on unit 2 is incremental on the received
	// latest: unchanged files share its inodes.
	d2 := startServe(t, s2)
	os.WriteFile(filepath.Join(a.data, "changing"), []byte("run 4, a new size\n"), 0o644)
	rep := backupOnce(t, a, api2, d2, hostKeys2, 1)
	if !strings.Contains(rep.Summary, "Base snapshot: "+snaps[2]) {
		t.Errorf("summary %q, want the received latest %s as base", rep.Summary, snaps[2])
	}
	for f := range files {
		if agenttest.Inode(t, snapPath(dir2, rep.Snapshot, f)) != agenttest.Inode(t, snapPath(dir2, snaps[2], f)) {
			t.Errorf("%s: not linked to the received latest", f)
		}
	}
	if got, _ := os.ReadFile(snapPath(dir2, rep.Snapshot, "changing")); !bytes.Equal(got, []byte("run 4, a new size\n")) {
		t.Errorf("changed file %q", got)
	}
	if latest, _ := os.Readlink(filepath.Join(dir2, "etc.snapshots", "latest")); latest != rep.Snapshot {
		t.Errorf("latest -> %q, want %q", latest, rep.Snapshot)
	}
}
