package daemon

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/turku-backup/turku-storage/config"
)

// The metrics listener serves GET /metrics and nothing else.
func TestMetricsHandlerOnlyMetrics(t *testing.T) {
	h, err := metricsHandler(newMonitor(&config.Config{}, func() []config.Volume { return nil }, nil), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", http.StatusOK},
		{"GET", "/", http.StatusNotFound},
		{"GET", "/debug/pprof/", http.StatusNotFound},
		{"POST", "/metrics", http.StatusMethodNotAllowed},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}
