package apiclient_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/apiclient/apitest"
	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// fakeAPIEnv makes the test binary serve the fake API with that many
// machines instead of running tests (see TestMain): the large-fleet test
// measures the client's memory, which the fake's own would swamp in one
// process.
const fakeAPIEnv = "APICLIENT_TEST_FAKE_API_MACHINES"

const (
	fleetStorage = "primary"
	fleetSecret  = "S"
)

func TestMain(m *testing.M) {
	if n := os.Getenv(fakeAPIEnv); n != "" {
		os.Exit(serveFakeAPI(n))
	}
	os.Exit(m.Run())
}

// fleetMachine is machine i of the large fleet: a UUID, names and an
// RSA-4096 public key in authorized_keys form (716 characters of
// base64, the largest key turku-agent generates), unique per machine.
func fleetMachine(i int) (string, apiclient.MachineInfo) {
	b64 := "AAAAB3NzaC1yc2EAAAADAQABAAACAQ" + strings.Repeat("x", 716-30-8) + fmt.Sprintf("%08d", i)
	return fmt.Sprintf("%08d-5a9b-43f7-a66a-7e8c6d7ad91d", i), apiclient.MachineInfo{
		EnvironmentName: "production", ServiceName: "webservice", UnitName: fmt.Sprintf("web-%06d", i),
		Comment: "a machine of a large site", SSHPublicKey: "ssh-rsa " + b64 + fmt.Sprintf(" root@web-%06d.example.com", i),
	}
}

// serveFakeAPI runs in the child process: the fake API with n machines
// assigned to fleetStorage, its URL on stdout, until stdin closes.
func serveFakeAPI(n string) int {
	count, err := strconv.Atoi(n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	api := apitest.New()
	defer api.Close()
	api.AddStorage(fleetStorage, fleetSecret)
	for i := range count {
		uuid, info := fleetMachine(i)
		api.AddMachine(fleetStorage, uuid, info)
	}
	fmt.Println(api.BaseURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// startFakeAPI starts the fake API with n machines in a child process and
// returns its base URL; the child ends with the test.
func startFakeAPI(t *testing.T, n int) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fakeAPIEnv, n))
	cmd.Stderr = os.Stderr
	stdin, stdout := agenttest.StartPiped(t, cmd)
	t.Cleanup(func() {
		stdin.Close() // the child's cue to stop
		if err := cmd.Wait(); err != nil {
			t.Errorf("fake API process: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("fake API process: %v", err)
	}
	return strings.TrimSpace(line)
}

// countingTransport counts the reply bytes the client read.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// heapObjects is the heap occupied by objects, live or not yet swept
// (runtime/metrics; unlike ReadMemStats it does not stop the world).
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestKeyRefreshLargeFleet: the key refresh of 100,000 machines with
// RSA-4096 keys, about 94 MiB of reply, almost three times the 32 MiB the
// whole reply used to be capped at (about 36,000 such machines), is
// decoded whole, and the client never holds the reply: at its peak the
// heap holds no more than the decoded machines plus a quarter (the
// collector runs at GOGC=10 here) and 8 MiB. Reading the reply whole
// first, as before, peaks at the reply plus the machines: about twice.
func TestKeyRefreshLargeFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 machines: not in -short")
	}
	const machines = 100_000
	url := startFakeAPI(t, machines)
	tr := &countingTransport{}
	c := mustClient(t, apiclient.Options{URL: url, Storage: apiclient.StorageAuth{Name: fleetStorage, Secret: fleetSecret},
		HTTPClient: &http.Client{Transport: tr}, Timeout: 5 * time.Minute})
	req := apiclient.UpdateConfigRequest{Storage: apiclient.StorageRegistration{SSHPingHost: "primary.example.com",
		SSHPingPort: 22, SSHPingUser: "root", SpaceTotal: 10, SpaceAvailable: 5}}

	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base := heapObjects()
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	resp, err := c.UpdateConfig(context.Background(), req)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatalf("%d machines: %v", machines, err)
	}
	runtime.GC()
	kept := heapObjects() - base
	runtime.KeepAlive(resp)
	if h := heapObjects(); h > peak.Load() {
		peak.Store(h)
	}
	grew := peak.Load() - base

	if got := len(resp.Machines); got != machines {
		t.Fatalf("got %d machines, want %d", got, machines)
	}
	for _, i := range []int{0, machines / 2, machines - 1} {
		uuid, want := fleetMachine(i)
		if diff := cmp.Diff(want, resp.Machines[uuid]); diff != "" {
			t.Errorf("machine %d (-want +got):\n%s", i, diff)
		}
	}
	reply := tr.n.Load()
	if reply <= 32<<20 {
		t.Fatalf("the reply is %d bytes: no larger than the old 32 MiB cap, so it proves nothing", reply)
	}
	bound := kept + kept/4 + 8<<20
	t.Logf("reply %.1f MiB; machines kept %.1f MiB; heap peak %.1f MiB above the start (bound %.1f MiB)",
		float64(reply)/(1<<20), float64(kept)/(1<<20), float64(grew)/(1<<20), float64(bound)/(1<<20))
	if grew > bound {
		t.Errorf("heap peaked %.1f MiB above the start, over the bound of %.1f MiB (machines kept %.1f MiB, reply %.1f MiB): the reply was held",
			float64(grew)/(1<<20), float64(bound)/(1<<20), float64(kept)/(1<<20), float64(reply)/(1<<20))
	}
}

// TestUpdateConfigReplyShapes: what the streamed decoding accepts and
// refuses, as json.Unmarshal of the whole reply did.
func TestUpdateConfigReplyShapes(t *testing.T) {
	big := strings.Repeat("k", 70<<10)
	for _, tc := range []struct {
		name, body string
		want       map[string]apiclient.MachineInfo
		wantErr    string
	}{
		{name: "machines", body: `{"machines": {"u1": {"unit_name": "web1", "environment_name": null, "ssh_public_key": "ssh-ed25519 AAAA x"}}}`,
			want: map[string]apiclient.MachineInfo{"u1": {UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAA x"}}},
		{name: "none", body: `{"machines": {}}`, want: map[string]apiclient.MachineInfo{}},
		{name: "other members skipped", body: `{"version": [1, {"a": 2}], "machines": {"u1": {"unit_name": "web1", "extra": [1]}}, "z": null}` + "\n",
			want: map[string]apiclient.MachineInfo{"u1": {UnitName: "web1"}}},
		{name: "no machines", body: `{}`, wantErr: `storage_update_config: HTTP 200: reply has no "machines" object`},
		{name: "null machines", body: `{"machines": null}`, wantErr: `storage_update_config: HTTP 200: reply has no "machines" object`},
		{name: "machines not an object", body: `{"machines": [1]}`, wantErr: `storage_update_config: malformed reply: "machines" is [, not an object`},
		{name: "machine not an object", body: `{"machines": {"u1": "web1"}}`,
			wantErr: `storage_update_config: malformed reply: machine "u1": json: cannot unmarshal string into Go value of type apiclient.MachineInfo`},
		{name: "not an object", body: `[]`, wantErr: `storage_update_config: malformed reply: got [, want '{'`},
		{name: "cut short", body: `{"machines": {"u1": {"unit_name": "web1"}`, wantErr: `storage_update_config: malformed reply: unexpected EOF`},
		{name: "data after", body: `{"machines": {}} {}`, wantErr: `storage_update_config: malformed reply: data after the reply object: {`},
		{name: "a machine over the entry limit", body: `{"machines": {"u1": {"comment": "` + big + `"}}}`,
			wantErr: `storage_update_config: reply too large: an entry over the 64 KiB limit`},
		{name: "another member over the entry limit", body: `{"x": "` + big + `", "machines": {}}`,
			wantErr: `storage_update_config: reply too large: an entry over the 64 KiB limit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c := mustClient(t, apiclient.Options{URL: srv.URL + "/v1"})
			resp, err := c.UpdateConfig(context.Background(), apiclient.UpdateConfigRequest{})
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, resp.Machines); diff != "" {
				t.Errorf("machines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpdateConfigReplyLost: a reply whose connection is lost midway is
// a failed read, not a malformed reply.
func TestUpdateConfigReplyLost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		io.WriteString(w, `{"machines": {"u1": {"unit_name": "web1"}, "u2": {"unit_`)
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	c := mustClient(t, apiclient.Options{URL: srv.URL + "/v1"})
	_, err := c.UpdateConfig(context.Background(), apiclient.UpdateConfigRequest{})
	if want := "storage_update_config: read reply: unexpected EOF"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
