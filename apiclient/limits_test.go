package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// hugeReply starts a server answering every call with 50 MiB: a valid
// JSON object whose one string never seems to end, streamed without a
// Content-Length (chunked) unless withLength. It counts what the client
// took.
func hugeReply(t *testing.T, withLength bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	const size = 50 << 20
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if withLength {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		head := `{"machine": {"uuid": "u1", "unit_name": "`
		n, _ := io.WriteString(w, head)
		written.Add(int64(n))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for rest := size - len(head) - 3; rest > 0; rest -= len(chunk) {
			n, err := w.Write(chunk[:min(len(chunk), rest)])
			written.Add(int64(n))
			if err != nil {
				return // the client hung up, as it should
			}
		}
		n, _ = io.WriteString(w, `"}}`)
		written.Add(int64(n))
	}))
	t.Cleanup(srv.Close)
	return srv, &written
}

// TestReplyLimits: a 50 MiB reply (a checkin reply is a few KiB) used to
// be read whole and acted on. Every call now has a limit sized to what it
// can hold; a reply over it is an error naming the limit, and the rest of
// the reply is not read. storage_update_config's reply, which grows with
// the fleet, has a limit per entry instead (TestKeyRefreshLargeFleet).
func TestReplyLimits(t *testing.T) {
	for _, tc := range []struct {
		name       string
		withLength bool
		call       func(*apiclient.Client) error
		want       string
	}{
		{"checkin chunked", false, func(c *apiclient.Client) error {
			_, err := c.PingCheckin(context.Background(), "u1")
			return err
		}, "storage_ping_checkin: reply too large: over the 1 MiB limit for this call"},
		{"checkin with length", true, func(c *apiclient.Client) error {
			_, err := c.PingCheckin(context.Background(), "u1")
			return err
		}, "storage_ping_checkin: reply too large: over the 1 MiB limit for this call"},
		{"update_config", false, func(c *apiclient.Client) error {
			_, err := c.UpdateConfig(context.Background(), apiclient.UpdateConfigRequest{})
			return err
		}, "storage_update_config: reply too large: an entry over the 64 KiB limit"},
		{"source_update", false, func(c *apiclient.Client) error {
			return c.SourceUpdate(context.Background(), "u1", "etc", apiclient.SourceReport{})
		}, "storage_ping_source_update: reply too large: over the 64 KiB limit for this call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, written := hugeReply(t, tc.withLength)
			c := mustClient(t, apiclient.Options{URL: srv.URL + "/v1"})
			err := tc.call(c)
			if !errors.Is(err, apiclient.ErrReplyTooLarge) || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			// The server may have put a few MiB into socket buffers, but
			// the client stopped reading at the limit.
			srv.CloseClientConnections()
			if got := written.Load(); got >= 50<<20 {
				t.Errorf("server wrote all %d bytes: the client read the whole reply", got)
			}
		})
	}
}

// TestReplyLimitFitsLargeSite: the key list of 20,000 machines with
// RSA-4096 keys, the largest turku-agent generates, is decoded whole.
func TestReplyLimitFitsLargeSite(t *testing.T) {
	t.Parallel()
	const machines = 20000
	key := "ssh-rsa " + strings.Repeat("A", 716) + " root@web-0000.example.com"
	resp := apiclient.UpdateConfigResponse{Machines: map[string]apiclient.MachineInfo{}}
	for i := range machines {
		resp.Machines[fmt.Sprintf("%08d-5a9b-43f7-a66a-7e8c6d7ad91d", i)] = apiclient.MachineInfo{
			EnvironmentName: "production", ServiceName: "webservice", UnitName: fmt.Sprintf("web-%05d", i),
			Comment: "a machine of a large site", SSHPublicKey: key,
		}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c := mustClient(t, apiclient.Options{URL: srv.URL + "/v1"})
	got, err := c.UpdateConfig(context.Background(), apiclient.UpdateConfigRequest{})
	if err != nil {
		t.Fatalf("%d machines in %d bytes: %v", machines, len(body), err)
	}
	if len(got.Machines) != machines {
		t.Errorf("got %d machines, want %d", len(got.Machines), machines)
	}
	t.Logf("%d machines with RSA-4096 keys: %.1f MiB", machines, float64(len(body))/(1<<20))
}
