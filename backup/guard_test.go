package backup

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// recordingObserver records what an Engine tells its Observer.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) BackupPhase(machine, unit, source, phase string, files func() int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, strings.Join([]string{machine, unit, source, phase}, " "))
}

func (o *recordingObserver) BackupFinished(machine, unit, source string, ok bool, begin, end time.Time, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	res := "failure"
	if ok {
		res = "success"
	}
	if end.Before(begin) {
		res += " (end before begin)"
	}
	o.events = append(o.events, strings.Join([]string{machine, unit, source, res}, " "))
}

func (o *recordingObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.events
	o.events = nil
	return out
}

// A volume filled above max_usage_pct fails the source at once: the real
// rsync is never started, no snapshot is made, retention deletes nothing,
// and both the agent and the report name the volume and its fill.
func TestDiskGuardRefusesFullVolume(t *testing.T) {
	src := apiclient.Source{Retention: "last 1 snapshots"}
	env, agent, srcDir := integrationEnv(t, src, map[string]string{"f.txt": "one"})
	obs := &recordingObserver{}
	env.e.obs = obs
	if err := env.pull(t, t.Context(), agent, creds("etc")); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	first := env.api.onlyReport(t)
	if diff := cmp.Diff([]string{
		testUUID + " web1 etc waiting", testUUID + " web1 etc running", testUUID + " web1 etc success",
	}, obs.take()); diff != "" {
		t.Errorf("observer (-want +got):\n%s", diff)
	}

	// Now the volume is 97% full; the default threshold is 95%.
	var statted []string
	env.e.stat = func(path string) (volumeStat, error) {
		statted = append(statted, path)
		return mibStat(1000, 30), nil
	}
	agenttest.WriteTree(t, srcDir, map[string]string{"f.txt": "two", "new.txt": "new"})
	before := listTree(t, env.volume)
	env.api.reset()
	err := env.pull(t, t.Context(), agent, creds("etc"))
	if err == nil {
		t.Fatal("pull into a full volume succeeded")
	}
	rep := env.api.onlyReport(t)
	if rep.Success {
		t.Error("report says success")
	}
	wantMsg := "volume vol1 is 97.0% full, above its limit of 95% (max_usage_pct): no backup started"
	if !strings.Contains(rep.Summary, wantMsg) {
		t.Errorf("report summary %q does not contain %q", rep.Summary, wantMsg)
	}
	if !strings.Contains(env.agent.String(), "Source etc: storage "+wantMsg) {
		t.Errorf("agent was not told; it saw:\n%s", env.agent.String())
	}
	if diff := cmp.Diff(before, listTree(t, env.volume)); diff != "" {
		t.Errorf("volume changed (-before +after):\n%s", diff)
	}
	if got := readFile(t, filepath.Join(env.machineDir(), "etc.snapshots", first.Snapshot, "f.txt")); got != "one" {
		t.Errorf("snapshot content %q", got)
	}
	if len(statted) == 0 || !strings.HasPrefix(statted[0], env.volume) {
		t.Errorf("guard statted %q, want the machine directory on %s", statted, env.volume)
	}
	if diff := cmp.Diff([]string{testUUID + " web1 etc failure"}, obs.take()); diff != "" {
		t.Errorf("observer (-want +got):\n%s", diff)
	}

	// Below the threshold again, the backup runs.
	env.e.stat = func(string) (volumeStat, error) { return mibStat(1000, 60), nil }
	env.wantPullSucceeds(t, agent, "below the threshold")
}

// A per-volume max_usage_pct overrides the default, both ways.
func TestDiskGuardPerVolumeThreshold(t *testing.T) {
	tests := []struct {
		name       string
		volMax     int
		defMax     int
		availMiB   int64
		wantRefuse bool
	}{
		{name: "default 95, 97% used", availMiB: 30, wantRefuse: true},
		{name: "default 95, 94% used", availMiB: 60, wantRefuse: false},
		{name: "volume 99, 97% used", volMax: 99, availMiB: 30, wantRefuse: false},
		{name: "volume 50, 60% used", volMax: 50, availMiB: 400, wantRefuse: true},
		{name: "config default 90, 92% used", defMax: 90, availMiB: 80, wantRefuse: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil, func(o *Options) {
				o.Volumes[0].MaxUsagePct = tt.volMax
				o.DefaultMaxUsagePct = tt.defMax
			})
			env.e.stat = func(string) (volumeStat, error) { return mibStat(1000, 990), nil }
			dir, err := env.e.placeMachine(testUUID)
			if err != nil {
				t.Fatal(err)
			}
			env.e.stat = func(string) (volumeStat, error) { return mibStat(1000, tt.availMiB), nil }
			err = env.e.guard(testUUID)
			if got := err != nil; got != tt.wantRefuse {
				t.Errorf("guard refused: %v (%v), want %v", got, err, tt.wantRefuse)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Error(err)
			}
		})
	}
}

// mibStat is a filesystem of totalMiB with availMiB available and no
// blocks reserved for root.
func mibStat(totalMiB, availMiB int64) volumeStat {
	return volumeStat{dev: 1, size: totalMiB << 20, used: (totalMiB - availMiB) << 20, avail: availMiB << 20}
}
