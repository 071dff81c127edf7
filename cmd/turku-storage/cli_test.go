package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/agenttest"
	"github.com/turku-backup/turku-storage/registry"
)

// site is a storage unit's configuration and directories for a test.
type site struct {
	dir     string // config dir
	varDir  string
	volume  string
	lockDir string
}

// newSite writes config.d/10-main.json with extra keys merged in.
func newSite(t *testing.T, extra map[string]any) *site {
	t.Helper()
	root := t.TempDir()
	s := &site{
		dir:     filepath.Join(root, "etc"),
		varDir:  filepath.Join(root, "var"),
		volume:  filepath.Join(root, "volume"),
		lockDir: filepath.Join(root, "lock"),
	}
	for _, d := range []string{filepath.Join(s.dir, "config.d"), s.volume, s.lockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := map[string]any{
		"name": "primary", "secret": "S",
		"var_dir": s.varDir, "lock_dir": s.lockDir,
		"volumes":       map[string]any{"default": map[string]any{"path": s.volume}},
		"ssh_ping_host": "127.0.0.1", "ssh_ping_user": "turku-ping",
		"ssh_listen": "127.0.0.1:0", "coordinator_listen": "127.0.0.1:0",
		"control_socket": controlSocketPath(t, root),
	}
	for k, v := range extra {
		cfg[k] = v
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "10-main.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// newAPISite is a site whose coordinator is a fake turku-api, closed when
// the test ends; extra keys are merged into its configuration.
func newAPISite(t *testing.T, extra map[string]any) (*apitest.Server, *site) {
	t.Helper()
	api := apitest.New()
	t.Cleanup(api.Close)
	cfg := map[string]any{"api_url": api.BaseURL()}
	for k, v := range extra {
		cfg[k] = v
	}
	return api, newSite(t, cfg)
}

// controlSocketPath is a socket path under root, or under a shorter
// temporary directory when root is too deep for a Unix socket address.
func controlSocketPath(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "run", "control.sock")
	if len(p) <= 100 {
		return p
	}
	dir, err := os.MkdirTemp("", "ts")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "control.sock")
}

type runResult struct {
	code           int
	stdout, stderr string
}

// execute runs the CLI in-process as main does, reading stdin (nil: the
// process's own), and prints the error once to g.stderr. It returns the
// exit code.
func execute(ctx context.Context, g *globals, stdin io.Reader, args ...string) int {
	root := newRootWith(g)
	if stdin != nil {
		root.SetIn(stdin)
	}
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(g.stderr, "turku-storage: %v\n", err)
		return exitCode(err)
	}
	return 0
}

// run executes the CLI in-process, like main does.
func run(t *testing.T, ctx context.Context, g *globals, args ...string) runResult {
	t.Helper()
	return runIn(t, ctx, g, nil, args...)
}

// runStdin runs the CLI with stdin, as sshd runs a forced command.
func runStdin(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	return runIn(t, context.Background(), nil, strings.NewReader(stdin), args...)
}

// runIn is run with stdin (nil: the process's own).
func runIn(t *testing.T, ctx context.Context, g *globals, stdin io.Reader, args ...string) runResult {
	t.Helper()
	var out, errOut agenttest.Output
	if g == nil {
		g = &globals{}
	}
	g.stdout, g.stderr = &out, &errOut
	code := execute(ctx, g, stdin, args...)
	r := runResult{code: code, stdout: out.String(), stderr: errOut.String()}
	t.Logf("turku-storage %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

func TestUpdateConfig(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, nil)
	api.AddRegistrationAuth("Storage Registrations", "R")
	api.AddMachine("primary", "u1", apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})
	ctx := context.Background()
	cache := filepath.Join(s.varDir, registry.CacheFile)

	r := run(t, ctx, nil, "-c", s.dir, "update-config")
	if r.code != 1 || !strings.Contains(r.stderr, "Bad auth") {
		t.Fatalf("unregistered without auth: got exit %d, want 1 with Bad auth", r.code)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Fatalf("failed registration wrote the cache: %v", err)
	}

	r = run(t, ctx, nil, "-c", s.dir, "update-config", "--api-auth-name", "Storage Registrations", "--api-auth-secret", "R")
	if r.code != 0 || !strings.Contains(r.stdout, ": 1 machine;") {
		t.Fatalf("registration: got exit %d, stdout %q", r.code, r.stdout)
	}
	body := api.Requests("storage_update_config")[1].Body
	keys := body["storage"].(map[string]any)["ssh_ping_host_keys"].([]any)
	if len(keys) != 1 || !strings.HasPrefix(keys[0].(string), "ssh-ed25519 ") {
		t.Errorf("advertised host keys %v, want our generated ed25519 key", keys)
	}
	hostKey, err := os.Stat(filepath.Join(s.varDir, "ssh_host_ed25519_key"))
	if err != nil || hostKey.Mode().Perm() != 0o600 {
		t.Errorf("host key: %v, mode %v", err, hostKey)
	}
	c, err := registry.LoadCache(cache)
	if err != nil || c.Machines["u1"].UnitName != "web1" {
		t.Fatalf("cache after registration: %+v, %v", c, err)
	}
	r = run(t, ctx, nil, "-c", s.dir, "update-config")
	if r.code != 0 {
		t.Fatalf("refresh without auth: exit %d", r.code)
	}
	before, _ := os.ReadFile(cache)

	wrong := newSite(t, map[string]any{"api_url": api.BaseURL(), "secret": "wrong"})
	r = run(t, ctx, nil, "-c", wrong.dir, "update-config")
	if r.code != 1 || !strings.Contains(r.stderr, "Bad auth") {
		t.Fatalf("wrong secret: got exit %d, want 1 with Bad auth", r.code)
	}

	// Unreachable API: a closed loopback port. The cache stays as it was.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	down := newSite(t, map[string]any{"api_url": dead, "var_dir": s.varDir})
	api.RemoveMachine("u1")
	r = run(t, ctx, nil, "-c", down.dir, "update-config")
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "storage_update_config") {
		t.Fatalf("unreachable: got exit %d, stderr %q", r.code, r.stderr)
	}
	after, _ := os.ReadFile(cache)
	if !bytes.Equal(before, after) {
		t.Error("unreachable API changed the cache")
	}
}

func TestConfigCheck(t *testing.T) {
	// Not parallel: t.Setenv below.
	ctx := context.Background()
	s := newSite(t, map[string]any{"api_url": "https://turku.example.com/v1", "api_auth_secret": "topsecret", "api_auth_name": "n", "frobnicate": true})
	r := run(t, ctx, nil, "-c", s.dir, "config", "check")
	if r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if got["secret"] != "********" || got["api_auth_secret"] != "********" || got["name"] != "primary" {
		t.Errorf("got %v", got)
	}
	if strings.Contains(r.stdout, "topsecret") {
		t.Error("secret printed")
	}
	if !strings.Contains(r.stderr, "frobnicate: unknown key, ignored") {
		t.Errorf("no warning for the unknown key: %q", r.stderr)
	}
	// Which file set each key; the environment wins over the files.
	if !regexp.MustCompile(`(?m)^api_url +config\.d/10-main\.json$`).MatchString(r.stderr) {
		t.Errorf("config check does not say which file set api_url: %q", r.stderr)
	}
	t.Setenv("TURKU_STORAGE_SSH_LISTEN", "127.0.0.1:0")
	r = run(t, ctx, nil, "-c", s.dir, "config", "check")
	if r.code != 0 || !regexp.MustCompile(`(?m)^ssh_listen +environment TURKU_STORAGE_SSH_LISTEN$`).MatchString(r.stderr) {
		t.Errorf("config check with TURKU_STORAGE_SSH_LISTEN: exit %d, stderr %q", r.code, r.stderr)
	}

	typo := newSite(t, map[string]any{"ssh_lisen": "127.0.0.1:2222"})
	r = run(t, ctx, nil, "-c", typo.dir, "config", "check")
	if r.code != 1 || !strings.Contains(r.stderr, "config.d/10-main.json: ssh_lisen: unknown key; did you mean ssh_listen?") {
		t.Errorf("typo: exit %d, stderr %q", r.code, r.stderr)
	}

	bad := newSite(t, map[string]any{"secret": nil, "ssh_ping_port": 70000})
	os.WriteFile(filepath.Join(bad.dir, "config.d", "10-main.json"), []byte(`{"name": "n", "volumes": {"v": {}}, "ssh_ping_port": 70000}`), 0o644)
	r = run(t, ctx, nil, "-c", bad.dir, "config", "check")
	if r.code != 1 {
		t.Fatalf("invalid config: exit %d, want 1", r.code)
	}
	for _, want := range []string{
		"config.d: secret: required",
		"config.d/10-main.json: volumes.v.path: required",
		"config.d/10-main.json: ssh_ping_port: 70000 is out of range 1..65535",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"update-config", "--help"}, {"config", "check", "--help"},
		{"ping", "--help"}, {"snapshots", "--help"}, {"coordinator", "export", "--help"},
	} {
		r := run(t, context.Background(), nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: exit %d, no usage", args, r.code)
		}
	}
	r := run(t, context.Background(), nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "turku-storage ") {
		t.Errorf("version: %q", r.stdout)
	}
}
