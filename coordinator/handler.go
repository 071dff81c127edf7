package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// apiError is an answer other than 200, with turku-api's status and text.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(msg string) error { return &apiError{http.StatusBadRequest, msg} }
func notFound(msg string) error   { return &apiError{http.StatusNotFound, msg} }

// errBadAuth is what turku-api answers for any failed login, never saying
// whether the machine exists.
var errBadAuth = &apiError{http.StatusForbidden, "Bad auth"}

// maxBody bounds a request; the largest real ones (update_config with many
// sources, a source report with a long summary) are a few hundred KiB.
const maxBody = 16 << 20

// call is one API view: it gets the decoded JSON object and returns the
// value to send as JSON, or an error (an *apiError for a deliberate answer).
type call func(ctx context.Context, req map[string]any) (any, error)

// Handler serves the API: POST /v1/<call> as turku-api does, and also
// /<call>, so api_url may name the coordinator with or without /v1.
func (c *Coordinator) Handler() http.Handler {
	calls := map[string]call{
		"health":                     c.health,
		"update_config":              c.updateConfig,
		"agent_ping_checkin":         c.agentPingCheckin,
		"agent_ping_restore":         c.agentPingRestore,
		"storage_update_config":      c.storageUpdateConfig,
		"storage_ping_checkin":       c.storagePingCheckin,
		"storage_ping_source_update": c.storagePingSourceUpdate,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/v1")
		name, ok := strings.CutPrefix(name, "/")
		fn := calls[name]
		if !ok || fn == nil {
			writeText(w, http.StatusNotFound, "Not found")
			return
		}
		// The same checks, in the same order, as turku-api's
		// ViewV1._parse_json_post.
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			writeText(w, http.StatusBadRequest, "Bad Content-Type (expected application/json)")
			return
		}
		req, err := decodeRequest(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
		out, err := fn(r.Context(), req)
		if ae, ok := errors.AsType[*apiError](err); ok {
			c.log.Debug("api call refused", "call", name, "remote", r.RemoteAddr, "status", ae.status, "err", ae.msg)
			writeText(w, ae.status, ae.msg)
			return
		}
		if err != nil {
			c.log.Error("api call failed", "call", name, "remote", r.RemoteAddr, "err", err)
			writeText(w, http.StatusInternalServerError, "Internal server error")
			return
		}
		body, err := json.Marshal(out)
		if err != nil {
			c.log.Error("encode api answer", "call", name, "err", err)
			writeText(w, http.StatusInternalServerError, "Internal server error")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// decodeRequest reads one JSON object. Numbers stay json.Number so that
// integers and floats convert as Python would.
func decodeRequest(r io.Reader) (map[string]any, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: extra data after the object")
	}
	req, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("invalid JSON: expected an object")
	}
	return req, nil
}

// object returns m[key] as an object, and whether it was one.
func object(m map[string]any, key string) (map[string]any, bool) {
	o, ok := m[key].(map[string]any)
	return o, ok
}
