package web

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/internal/testcert"
)

// TestServeTLS: with web_tls_cert the dashboard answers HTTPS only, and
// Serve returns once its context ends.
func TestServeTLS(t *testing.T) {
	u := fiveMachines(t)
	certFile, keyFile, pool := testcert.Write(t, t.TempDir())
	s := u.server(Options{TLSCert: certFile, TLSKey: keyFile})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := ln.Addr().String()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get("https://" + addr + "/api/running")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"running"`) {
		t.Errorf("HTTPS /api/running: %d %s", res.StatusCode, body)
	}
	if s.Addr() == nil || s.Addr().String() != addr {
		t.Errorf("Addr: got %v, want %s", s.Addr(), addr)
	}
	// Clear text on the TLS port gets no page.
	plain := &http.Client{Timeout: 30 * time.Second}
	if res, err := plain.Get("http://" + addr + "/"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), "web1") {
			t.Error("the dashboard answered in clear text on its TLS port")
		}
	}
}

// TestServeBadTLS: a TLS pair that does not load stops Serve with an
// error naming the setting, and closes the listener.
func TestServeBadTLS(t *testing.T) {
	u := newUnit(t)
	missing := filepath.Join(t.TempDir(), "none.crt")
	s := u.server(Options{TLSCert: missing, TLSKey: missing})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "web_tls_cert") {
		t.Errorf("got %v, want an error naming web_tls_cert", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("listener still open")
	}
}
