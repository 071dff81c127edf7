package sshserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/internal/agenttest"
	gossh "golang.org/x/crypto/ssh"
)

// recordingObserver records what the server tells its Observer.
type recordingObserver struct {
	mu           sync.Mutex
	authFailures int
	departed     int
	dropped      map[string]int
	sessions     []*observedSession
}

type observedSession struct {
	desc     string
	received int64
	ended    bool
	done     chan struct{} // closed by end
}

func (o *recordingObserver) AuthFailed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.authFailures++
}

func (o *recordingObserver) DepartedKeyRefused() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.departed++
}

func (o *recordingObserver) ConnectionDropped(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped == nil {
		o.dropped = map[string]int{}
	}
	o.dropped[reason]++
}

func (o *recordingObserver) SessionStarted(mode, machine, unit, remote string, agentPort, restorePort int) (func(int64), func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	desc := fmt.Sprintf("%s %s %s %d remote-set=%v", mode, machine, unit, agentPort, strings.HasPrefix(remote, "127.0.0.1:"))
	if restorePort != 0 {
		desc += fmt.Sprintf(" restore-port=%d", restorePort)
	}
	s := &observedSession{desc: desc, done: make(chan struct{})}
	o.sessions = append(o.sessions, s)
	return func(n int64) {
			o.mu.Lock()
			defer o.mu.Unlock()
			s.received += n
		}, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			s.ended = true
			close(s.done)
		}
}

func TestObserverSessionsAndFailures(t *testing.T) {
	obs := &recordingObserver{}
	ts := startServer(t, func(o *Options) {
		o.Observer = obs
		o.MaxSessions = 1
		o.SessionRequestTimeout = time.Hour
		o.sessionWait = 100 * time.Millisecond
	})

	// An unknown key: one failed attempt (x/crypto's client queries, then
	// gives up: it has no other key).
	if _, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(testUser, gossh.PublicKeys(agenttest.NewSigner(t)))); err == nil {
		t.Fatal("unknown key logged in")
	}

	// A checkin whose "rsync" reads the greeting and an echo through the
	// tunnel; meanwhile a second machine's session that states nothing
	// holds the one MaxSessions slot (a stated checkin holds none), and
	// its next is dropped for MaxSessions.
	pulling := make(chan struct{})
	release := make(chan struct{})
	ts.puller.pull = func(ctx context.Context, req PullRequest) error {
		greeting, err := rsyncLike(ctx, req.RsyncAddr)
		if err != nil {
			return err
		}
		if greeting != "web1" {
			return fmt.Errorf("greeting %q", greeting)
		}
		close(pulling)
		<-release
		return nil
	}
	a := ts.dial(t, ts.keys[uuidA])
	serveForwards(t, a, "web1")
	if ok, err := forwardRequest(a, "localhost", 51234); !ok || err != nil {
		t.Fatalf("forward: %v %v", ok, err)
	}
	done := make(chan int)
	go func() {
		code, _ := runSession(t, a, checkinRequest(51234))
		done <- code
	}()
	<-pulling
	obs.mu.Lock()
	if len(obs.sessions) != 1 || obs.sessions[0].ended {
		t.Errorf("during the checkin: sessions %+v, want one running", obs.sessions)
	}
	obs.mu.Unlock()
	v := ts.dial(t, ts.keys[uuidV])
	held, err := v.NewSession()
	if err != nil {
		t.Fatalf("session beside a running checkin: %v", err)
	}
	v2 := ts.dial(t, ts.keys[uuidV])
	if _, err := v2.NewSession(); err == nil {
		t.Error("second session accepted")
	}
	held.Close()
	close(release)
	if code := <-done; code != 0 {
		t.Fatalf("checkin exit %d", code)
	}
	obs.mu.Lock()
	ended := obs.sessions[0].done
	obs.mu.Unlock()
	<-ended

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.authFailures < 1 {
		t.Errorf("auth failures %d, want at least 1", obs.authFailures)
	}
	if diff := cmp.Diff(map[string]int{DropMaxSessions: 1}, obs.dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if len(obs.sessions) != 1 {
		t.Fatalf("sessions %+v, want 1", obs.sessions)
	}
	s := obs.sessions[0]
	if want := "checkin " + uuidA + " web1 51234 remote-set=true"; s.desc != want {
		t.Errorf("session %q, want %q", s.desc, want)
	}
	// "web1\n" then the echoed "ping".
	if want := int64(len("web1\n") + len("ping")); s.received != want {
		t.Errorf("received %d bytes, want %d", s.received, want)
	}
	if !s.ended {
		t.Error("session not ended")
	}
}

// The accept loop beats while no connection comes: each beat is the
// listener's deadline passing, not a timer of its own.
func TestHeartbeatFromAcceptLoop(t *testing.T) {
	beats := make(chan struct{}, 1)
	ts := startServer(t, func(o *Options) {
		o.HeartbeatInterval = 10 * time.Millisecond
		o.Heartbeat = func() {
			select {
			case beats <- struct{}{}:
			default:
			}
		}
	})
	for range 3 {
		<-beats
	}
	// A connection in between does not stop them.
	c := ts.dial(t, ts.keys[uuidA])
	c.Close()
	for range 3 {
		<-beats
	}
}
