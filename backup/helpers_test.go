package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/agentproto"
	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/testlog"
	"github.com/turku-backup/turku-storage/sessionlog"
)

const testUUID = "0f3c5a5e-1b2c-4d3e-8f9a-0b1c2d3e4f50"

// fakeAPI implements API, serving canned checkins and recording reports.
type fakeAPI struct {
	mu         sync.Mutex // guards everything below
	machine    apiclient.CheckinMachine
	checkinErr error
	updateErrs []error // returned by successive SourceUpdate calls; then nil
	attempts   int
	reports    []recordedReport
	// hold, when set, hangs SourceUpdate until it is closed; each call
	// first sends on arrived.
	hold, arrived chan struct{}
	// flush, when set, waits for the engine's background report
	// deliveries, so that got sees every report sent so far.
	flush func()
}

type recordedReport struct {
	Machine, Source string
	Report          apiclient.SourceReport
}

func (f *fakeAPI) PingCheckin(_ context.Context, uuid string) (*apiclient.CheckinResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.checkinErr != nil {
		return nil, f.checkinErr
	}
	m := f.machine
	m.UUID = uuid
	return &apiclient.CheckinResponse{Machine: m}, nil
}

func (f *fakeAPI) SourceUpdate(ctx context.Context, uuid, source string, r apiclient.SourceReport) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if f.hold != nil {
		// A hung API: the call is answered once released, or the caller
		// gives up first (and then does not know the API processed it).
		hold, arrived := f.hold, f.arrived
		f.mu.Unlock()
		arrived <- struct{}{}
		select {
		case <-hold:
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.reports = append(f.reports, recordedReport{uuid, source, r})
		return ctx.Err()
	}
	if len(f.updateErrs) > 0 {
		err := f.updateErrs[0]
		f.updateErrs = f.updateErrs[1:]
		if err != nil {
			return err
		}
	}
	f.reports = append(f.reports, recordedReport{uuid, source, r})
	return nil
}

func (f *fakeAPI) got() []recordedReport {
	if f.flush != nil {
		f.flush()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedReport(nil), f.reports...)
}

// onlyReport returns the single report, failing the test otherwise.
// reset forgets the reports recorded so far, once the engine's
// background deliveries are done.
func (f *fakeAPI) reset() {
	if f.flush != nil {
		f.flush()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = nil
}

func (f *fakeAPI) onlyReport(t *testing.T) apiclient.SourceReport {
	t.Helper()
	r := f.got()
	if len(r) != 1 {
		t.Fatalf("got %d reports, want 1: %+v", len(r), r)
	}
	return r[0].Report
}

// stepClock returns a clock that starts at start and advances a second
// per reading, so every snapshot gets a distinct time.
func stepClock(start time.Time) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

type testEnv struct {
	e      *Engine
	api    *fakeAPI
	varDir string
	volume string
	agent  *syncBuffer // what the agent sees
}

// syncBuffer is a goroutine-safe buffer for the session log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// onWrite, if set, sees every write.
	onWrite func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onWrite != nil {
		s.onWrite(string(p))
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns the messages of the session log without timestamps.
func (s *syncBuffer) lines() []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s.String()), "\n") {
		if _, msg, ok := strings.Cut(l, "] "); ok {
			out = append(out, msg)
		}
	}
	return out
}

// newTestEnv builds an Engine on temporary directories with one volume
// and a fake API whose machine has unit "web1" and the given sources.
func newTestEnv(t *testing.T, sources map[string]apiclient.Source, mod func(*Options)) *testEnv {
	t.Helper()
	root := t.TempDir()
	env := &testEnv{
		api:    &fakeAPI{machine: apiclient.CheckinMachine{EnvironmentName: "prod", ServiceName: "www", UnitName: "web1", ScheduledSources: sources}},
		varDir: filepath.Join(root, "var"),
		volume: filepath.Join(root, "vol1"),
		agent:  &syncBuffer{},
	}
	for _, d := range []string{env.varDir, env.volume, filepath.Join(root, "lock")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{
		StorageName:  "primary",
		VarDir:       env.varDir,
		LockDir:      filepath.Join(root, "lock"),
		Volumes:      []Volume{{Name: "vol1", Path: env.volume, AcceptNew: true, HighWaterPct: 100}},
		API:          env.api,
		Logger:       testlog.New(t),
		Now:          stepClock(time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC)),
		RsyncCommand: "rsync",
	}
	if mod != nil {
		mod(&opts)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.reports.retryDelays = []time.Duration{0, 0}
	env.api.flush = func() { _ = e.reports.Wait(context.Background()) }
	env.e = e
	return env
}

func (env *testEnv) request(creds map[string]agentproto.Credential) Request {
	return Request{
		Machine:     testUUID,
		Credentials: creds,
		RsyncAddr:   "127.0.0.1:12345",
		Log:         sessionlog.New(env.agent, "primary", true, nil),
	}
}

func (env *testEnv) machineDir() string { return filepath.Join(env.volume, testUUID) }

// listTree returns every path under dir, relative, sorted; nil if dir is
// missing.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func creds(names ...string) map[string]agentproto.Credential {
	m := map[string]agentproto.Credential{}
	for _, n := range names {
		m[n] = agentproto.Credential{Username: "user-" + n, Password: "pw-" + n}
	}
	return m
}
