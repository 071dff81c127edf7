package agenttest

import (
	"os/exec"
	"testing"
)

func TestStartRsyncdOnPortTaken(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	d := StartRsyncd(t, "127.0.0.1", []Module{{Name: "m", Path: t.TempDir(), User: "u", Password: "p"}})
	if _, err := StartRsyncdOnPort(t, d.Host, d.Port, nil); err == nil {
		t.Fatalf("second daemon on %s started, want a bind error", d.Addr())
	} else {
		t.Logf("second daemon: %v", err)
	}
}

func TestStartRsyncdPerHost(t *testing.T) {
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed")
	}
	modules := map[string][]Module{
		"127.0.0.2": {{Name: "m", Path: t.TempDir(), User: "u", Password: "p"}},
		"127.0.0.3": {{Name: "m", Path: t.TempDir(), User: "u", Password: "p"}},
	}
	daemons := StartRsyncdPerHost(t, modules)
	if len(daemons) != 2 {
		t.Fatalf("%d daemons, want 2", len(daemons))
	}
	if a, b := daemons["127.0.0.2"], daemons["127.0.0.3"]; a.Port != b.Port || a.Host != "127.0.0.2" || b.Host != "127.0.0.3" {
		t.Errorf("daemons at %s and %s, want one port on both hosts", a.Addr(), b.Addr())
	}
}
