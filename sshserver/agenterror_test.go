package sshserver

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

func TestAgentMessage(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cause error
		want  string
	}{
		{"declared", ErrMachineRevoked, "machine revoked"},
		{"wrapped declared", fmt.Errorf("refresh: %w", ErrMachineRevoked), "machine revoked"},
		{"undeclared", errors.New("open /var/lib/turku-storage/x: permission denied"), "internal error"},
		{"undeclared wrapping nothing declared", fmt.Errorf("dial 10.0.0.5:443: %w", errors.New("refused")), "internal error"},
		{"declared around undeclared", &agentError{fmt.Errorf("%w: %w", ErrShutdown, errors.New("second signal"))}, "shutdown: second signal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := agentMessage(tt.cause); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUndeclaredCauseNotShown: a session cut short by a cause not
// declared agent-visible tells the agent a generic message; the cause
// itself is in our log only.
func TestUndeclaredCauseNotShown(t *testing.T) {
	t.Parallel()
	var logs agenttest.Output
	ts := startServer(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	pulling, causes := blockPull(ts)
	c := ts.dial(t, ts.keys[uuidA])
	forwardRequest(c, "localhost", 51234)
	secret := errors.New("open /srv/secret/db.key: permission denied")
	go func() {
		<-pulling
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for cn := range ts.conns {
			cn.cancel(secret)
		}
	}()
	code, stderr := runSession(t, c, checkinRequest(51234))
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr, "ERROR: Session ended: internal error") || strings.Contains(stderr, "secret") {
		t.Errorf("stderr %q, want the generic message and not the cause", stderr)
	}
	if cause := <-causes; !errors.Is(cause, secret) {
		t.Errorf("Pull's context ended with %v, want the cause", cause)
	}
	// Logged before the agent is told.
	if !strings.Contains(logs.String(), "/srv/secret/db.key") {
		t.Errorf("the cause is not in our log:\n%s", logs.String())
	}
}
