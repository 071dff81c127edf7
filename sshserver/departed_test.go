package sshserver

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/internal/testlog"
)

// TestE2EDepartedKey: the real OpenSSH client offering the key of a
// machine that left this unit is refused like any unknown key, but the
// log names the machine once per connection, and the Observer counts it
// apart; a stranger's key is still "public key not authorized".
func TestE2EDepartedKey(t *testing.T) {
	t.Parallel()
	requireTools(t)
	var logs agenttest.Output
	obs := &recordingObserver{}
	ts := startServer(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testlog.Writer(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.Observer = obs
	})
	departed := agenttest.NewKey(t)
	ts.SetDeparted(map[string]apiclient.MachineInfo{
		uuidB: {UnitName: "web2", SSHPublicKey: departed.Authorized + " root@web2"},
	})
	const line = "machine web2 (" + uuidB + ") is no longer assigned to this storage unit"

	res := ts.agentPing(departed, "127.0.0.2", 50000, checkinJSON(50000, "etc")).Start(t).Wait(t, e2eWait)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "Permission denied (publickey)") {
		t.Errorf("ssh exit %d, stderr %q; want 255 and Permission denied", res.ExitCode, res.Stderr)
	}
	if n := strings.Count(logs.String(), line); n != 1 {
		t.Errorf("log has %q %d times, want once:\n%s", line, n, logs.String())
	}
	if strings.Contains(logs.String(), "public key not authorized") {
		t.Errorf("the departed key was also logged as a stranger's")
	}

	stranger := ts.agentPing(agenttest.NewKey(t), "127.0.0.2", 50001, checkinJSON(50001, "etc")).Start(t).Wait(t, e2eWait)
	if stranger.ExitCode != 255 {
		t.Errorf("stranger's ssh exit %d, want 255", stranger.ExitCode)
	}
	if !strings.Contains(logs.String(), "public key not authorized") || strings.Count(logs.String(), line) != 1 {
		t.Errorf("a stranger's key is not logged as one, or as the departed machine:\n%s", logs.String())
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.departed != 1 || obs.authFailures < 2 {
		t.Errorf("observer: %d departed, %d auth failures; want 1 and at least 2", obs.departed, obs.authFailures)
	}
	if n := len(ts.puller.machines()); n != 0 {
		t.Errorf("%d checkins ran", n)
	}
}
