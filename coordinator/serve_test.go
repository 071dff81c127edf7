package coordinator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/testcert"
)

// startServer serves f's coordinator on a loopback port until the test
// ends; stop ends Serve's context and returns its result.
func startServer(t *testing.T, f *fixture, opts ServerOptions) (srv *Server, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err = f.c.NewServer(ln, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stop() })
	return srv, stop
}

func postJSON(t *testing.T, client *http.Client, url string, body any) (int, string) {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// TestServerTLS: with a key pair, the agent-facing API is served over
// HTTPS only; the storage-facing calls are not served on the network; the
// end of ctx stops Serve without an error and closes the port.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	certFile, keyFile, pool := testcert.Write(t, t.TempDir())
	srv, stop := startServer(t, f, ServerOptions{TLSCert: certFile, TLSKey: keyFile})
	if want := "https://" + srv.Addr().String() + "/v1"; srv.URL() != want {
		t.Errorf("URL %q, want %q", srv.URL(), want)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	if code, body := postJSON(t, client, srv.URL()+"/health", obj{}); code != http.StatusOK {
		t.Errorf("health over HTTPS: %d %q", code, body)
	}
	if code, body := postJSON(t, client, srv.URL()+"/storage_ping_checkin", obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID}}); code != http.StatusNotFound {
		t.Errorf("storage_ping_checkin on the network: %d %q, want 404", code, body)
	}
	plain := &http.Client{Transport: &http.Transport{}}
	if code, body := postJSON(t, plain, "http://"+srv.Addr().String()+"/v1/health", obj{}); code != http.StatusBadRequest {
		t.Errorf("plain HTTP on the TLS port: %d %q, want net/http's 400", code, body)
	}
	plain.CloseIdleConnections()
	client.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Errorf("Serve after ctx ended: %v, want nil", err)
	}
	if c, err := net.Dial("tcp", srv.Addr().String()); err == nil {
		c.Close()
		t.Error("the port still accepts connections after Serve returned")
	}
}

// TestServerRegistered: Registered is called after a successful
// update_config only.
func TestServerRegistered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	calls := make(chan struct{}, 10)
	srv, _ := startServer(t, f, ServerOptions{Registered: func() { calls <- struct{}{} }})
	if !strings.HasPrefix(srv.URL(), "http://") {
		t.Errorf("URL %q without TLS, want http://", srv.URL())
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	bad := agentConfig(obj{"etc": etcSource})
	bad["auth"] = obj{"name": RegistrationAuthName, "secret": "wrong"}
	if code, body := postJSON(t, client, srv.URL()+"/update_config", bad); code != http.StatusForbidden {
		t.Fatalf("update_config with a wrong secret: %d %q, want 403", code, body)
	}
	if code, body := postJSON(t, client, srv.URL()+"/health", obj{}); code != http.StatusOK {
		t.Fatalf("health: %d %q", code, body)
	}
	if n := len(calls); n != 0 {
		t.Fatalf("Registered called %d times before a successful update_config", n)
	}
	if code, body := postJSON(t, client, srv.URL()+"/update_config", agentConfig(obj{"etc": etcSource})); code != http.StatusOK {
		t.Fatalf("update_config: %d %q", code, body)
	}
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("Registered not called after a successful update_config")
	}
	if n := len(calls); n != 0 {
		t.Errorf("Registered called %d more times after one successful update_config", n)
	}
}

// TestNewServerBadKeyPair: a key pair that cannot be loaded is an error
// and the listener is closed.
func TestNewServerBadKeyPair(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	if _, err := f.c.NewServer(ln, ServerOptions{TLSCert: missing, TLSKey: missing}); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("NewServer with a missing key pair: %v, want an error naming the file", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("listener after a failed NewServer: Accept %v, want net.ErrClosed", err)
	}
}
