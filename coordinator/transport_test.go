package coordinator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
)

// TestHandlerTransport: the in-process transport carries status, body and
// request exactly, so the client's error mapping works as over HTTP.
func TestHandlerTransport(t *testing.T) {
	t.Parallel()
	var gotPath, gotType string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotType = r.URL.Path, r.Header.Get("Content-Type")
		body, _ := io.ReadAll(r.Body)
		if len(body) == 0 {
			http.Error(w, "empty body", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "Bad auth")
	})
	c, err := apiclient.New(apiclient.Options{URL: "http://coordinator.invalid/v1", HTTPClient: &http.Client{Transport: handlerTransport{h}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PingCheckin(context.Background(), "u1")
	var apiErr *apiclient.Error
	if !errors.Is(err, apiclient.ErrBadAuth) || !errors.As(err, &apiErr) || apiErr.Body != "Bad auth" {
		t.Fatalf("got %v, want 403 Bad auth", err)
	}
	if gotPath != "/v1/storage_ping_checkin" || gotType != "application/json" {
		t.Errorf("handler saw %q %q", gotPath, gotType)
	}
}

// TestTransportServesStorageCalls: the coordinator's Transport carries the
// storage-facing calls, which Handler (the network side) answers 404.
func TestTransportServesStorageCalls(t *testing.T) {
	t.Parallel()
	f := newRegistered(t)
	c, err := apiclient.New(apiclient.Options{
		URL:        "http://coordinator.invalid/v1",
		Storage:    apiclient.StorageAuth{Name: storageName, Secret: storageSecret},
		HTTPClient: &http.Client{Transport: f.c.Transport()},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PingCheckin(context.Background(), machineUUID)
	if err != nil {
		t.Fatalf("storage_ping_checkin through Transport: %v", err)
	}
	if res.Machine.UnitName != "web1" {
		t.Errorf("storage_ping_checkin through Transport: machine %+v, want unit web1", res.Machine)
	}
}
