package apiclient_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestNotSent: only a call that certainly never reached the API is marked
// ErrNotSent; one the API received and did not answer in time is not (it
// may have been processed).
func TestNotSent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	refused := mustClient(t, apiclient.Options{URL: "http://" + addr + "/v1"})
	if err := refused.SourceUpdate(context.Background(), "u1", "etc", apiclient.SourceReport{}); !errors.Is(err, apiclient.ErrNotSent) {
		t.Errorf("connection refused: %v, want ErrNotSent", err)
	}

	received := make(chan struct{}, 1)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- struct{}{}
		<-release
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(release) })
	c := mustClient(t, apiclient.Options{URL: hung.URL + "/v1", Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-received
		cancel() // the request is with the API: giving up now is ambiguous
	}()
	err = c.SourceUpdate(ctx, "u1", "etc", apiclient.SourceReport{})
	if err == nil || errors.Is(err, apiclient.ErrNotSent) {
		t.Errorf("received, unanswered: %v, want an error that is not ErrNotSent", err)
	}
}

// TestCallerDeadlineReplacesTimeout: a caller that would rather wait for
// the answer (a report) gives its own deadline, and Timeout does not cut
// the call short.
func TestCallerDeadlineReplacesTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	received := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received <- struct{}{}
		<-release
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	c := mustClient(t, apiclient.Options{URL: srv.URL + "/v1", Timeout: time.Nanosecond})
	// Without a deadline of its own, the call ends by Timeout.
	go func() { <-received; close(release) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if err := c.SourceUpdate(ctx, "u1", "etc", apiclient.SourceReport{}); err != nil {
		t.Fatalf("with the caller's deadline: %v", err)
	}
	if err := c.SourceUpdate(context.Background(), "u1", "etc", apiclient.SourceReport{}); err == nil {
		t.Error("a 1 ns Timeout did not bound a call without a deadline")
	}
}
