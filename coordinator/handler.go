package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// apiError is an answer other than 200, with turku-api's status and text.
type apiError struct {
	status     int
	msg        string
	retryAfter time.Duration // sent as Retry-After when set (429, 503)
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(msg string) error { return &apiError{status: http.StatusBadRequest, msg: msg} }
func notFound(msg string) error   { return &apiError{status: http.StatusNotFound, msg: msg} }

// errBadAuth is what turku-api answers for any failed login, never saying
// whether the machine exists.
var errBadAuth = &apiError{status: http.StatusForbidden, msg: "Bad auth"}

// errBusy answers a login whose secret would need an argon2 verification
// while every verification slot is taken: rather than queue behind them
// (and let wrong secrets delay real agents), the caller is told to retry.
var errBusy = &apiError{status: http.StatusServiceUnavailable,
	msg: "Busy verifying secrets, try again shortly", retryAfter: 2 * time.Second}

// call is one API view: it gets the decoded JSON object and returns the
// value to send as JSON, or an error (an *apiError for a deliberate answer).
type call func(ctx context.Context, req map[string]any) (any, error)

// endpoint is one API call: its view, the largest body it reads, the
// fields it takes, whether it is served on coordinator_listen, and
// whether a 200 means the caller proved a secret (every call but health).
type endpoint struct {
	fn      call
	maxBody int64
	fields  fields
	agent   bool
	login   bool
}

// Body limits. Agent calls carry a UUID and a secret, or (update_config)
// the machine and its sources: a source with the longest filter and
// exclude lists turku-api stores is about 6 KiB, typical ones a few
// hundred bytes. The storage-facing calls come only from this process; a
// report carries rsync's summary (a few KiB).
const (
	maxAgentBody        = 4 << 10
	maxUpdateConfigBody = 64 << 10
	maxStorageBody      = 1 << 20
)

// Deadlines on coordinator_listen, fitted to the body limits: an agent
// sends its whole request, a few hundred bytes, in one or two packets, and
// even 64 KiB arrives in well under a second on any link a backup could
// use. A client that is slower holds a connection, and after admission a
// place among the requests in flight, for nothing: a 1 byte/s body of
// 4 KiB would hold its place for over an hour.
const (
	// headerTimeout bounds the TLS handshake and then the request header,
	// from the connection's start (on a kept-alive connection, from the
	// next request's first byte); the connection is closed without an
	// answer (http.Server.ReadHeaderTimeout).
	headerTimeout = 5 * time.Second
	// agentBodyTimeout and updateConfigBodyTimeout bound a body, from the
	// end of its header, for calls taking at most maxAgentBody and
	// maxUpdateConfigBody; a body still arriving then is answered 408.
	agentBodyTimeout        = 5 * time.Second
	updateConfigBodyTimeout = 10 * time.Second
	// idleTimeout bounds the wait for a kept-alive connection's next
	// request (turku-agent makes one call per connection).
	idleTimeout = 5 * time.Second
)

// bodyTimeout is the deadline for a body of at most limit bytes.
func bodyTimeout(limit int64) time.Duration {
	if limit <= maxAgentBody {
		return agentBodyTimeout
	}
	return updateConfigBodyTimeout
}

func (c *Coordinator) endpoints() map[string]endpoint {
	agentReq := fields{"machine": agentMachineKeys}
	machineReq := fields{"uuid": nil, "secret": nil, "environment_name": nil, "service_name": nil,
		"unit_name": nil, "comment": nil, "ssh_public_key": nil, "published": nil, "sources": nil}
	storageReq := fields{"storage": storageAuthKeys, "machine": fields{"uuid": nil}}
	return map[string]endpoint{
		"health":             {c.health, maxAgentBody, fields{}, true, false},
		"update_config":      {c.updateConfig, maxUpdateConfigBody, fields{"machine": machineReq, "auth": authKeys}, true, true},
		"agent_ping_checkin": {c.agentPingCheckin, maxAgentBody, agentReq, true, true},
		"agent_ping_restore": {c.agentPingRestore, maxAgentBody, agentReq, true, true},
		"storage_update_config": {c.storageUpdateConfig, maxStorageBody,
			fields{"storage": storageKeys, "auth": authKeys}, false, true},
		"storage_ping_checkin": {c.storagePingCheckin, maxAgentBody, storageReq, false, true},
		"storage_ping_source_update": {c.storagePingSourceUpdate, maxStorageBody,
			fields{"storage": storageAuthKeys, "machine": fields{"uuid": nil, "sources": nil}}, false, true},
	}
}

// Handler serves the agent-facing calls (health, update_config,
// agent_ping_checkin, agent_ping_restore) for coordinator_listen: POST
// /v1/<call> as turku-api does, and also /<call>, so api_url may name the
// coordinator with or without /v1. Each request's body gets a read
// deadline (agentBodyTimeout, updateConfigBodyTimeout), and before the
// body is read the request passes admission (Options.Limits): caps on
// requests in flight, overall and per client address, and penalties for
// addresses that keep sending wrong secrets. The storage-facing calls
// answer 404 here: they are served only in-process, by InProcessHandler.
func (c *Coordinator) Handler() http.Handler {
	return c.handler(true)
}

// InProcessHandler serves every call, the storage-facing ones included,
// without admission control. It is for this storage unit's own in-process
// transport and must never be served on a listener.
func (c *Coordinator) InProcessHandler() http.Handler {
	return c.handler(false)
}

func (c *Coordinator) handler(network bool) http.Handler {
	calls := c.endpoints()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/v1")
		name, ok := strings.CutPrefix(name, "/")
		ep, known := calls[name]
		if network {
			// Before anything else, so that what net/http drains of a
			// body left unread (a refusal, a 404) is under the deadline
			// too. An httptest.ResponseRecorder has no deadline to set.
			limit := int64(maxAgentBody)
			if known {
				limit = ep.maxBody
			}
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout(limit)))
		}
		if !ok || !known || (network && !ep.agent) {
			writeText(w, http.StatusNotFound, "Not found")
			return
		}
		if !network {
			c.serveCall(w, r, name, ep)
			return
		}
		key := addrKey(r.RemoteAddr)
		stranger, ref := c.admission.admit(key)
		if ref != nil {
			// The connection closes after the answer, so its place
			// is free until the client retries.
			w.Header().Set("Connection", "close")
			writeRetry(w, http.StatusTooManyRequests, ref.msg, ref.retryAfter)
			return
		}
		status := http.StatusInternalServerError // if serveCall panics
		defer func() {
			c.admission.release(key, stranger, status == http.StatusForbidden, ep.login && status == http.StatusOK)
		}()
		status = c.serveCall(w, r, name, ep)
	})
}

// serveCall answers one admitted call and returns the status it sent.
func (c *Coordinator) serveCall(w http.ResponseWriter, r *http.Request, name string, ep endpoint) int {
	// The same checks, in the same order, as turku-api's
	// ViewV1._parse_json_post, with a body limit first.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	if r.Header.Get("Content-Type") != "application/json" {
		return writeText(w, http.StatusBadRequest, "Bad Content-Type (expected application/json)")
	}
	tooLarge := func() int {
		c.log.Debug("api request too large", "call", name, "remote", r.RemoteAddr, "bytes", r.ContentLength)
		// The rest of the body is not read: close rather than drain it.
		w.Header().Set("Connection", "close")
		return writeText(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("Request body too large: %s takes at most %d bytes", name, ep.maxBody))
	}
	if r.ContentLength > ep.maxBody {
		return tooLarge()
	}
	req, err := decodeRequest(http.MaxBytesReader(w, r.Body, ep.maxBody), ep.fields)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		d := bodyTimeout(ep.maxBody)
		c.log.Debug("api request body too slow", "call", name, "remote", r.RemoteAddr, "duration", d)
		c.admission.noteRefused(refusedSlowBody)
		w.Header().Set("Connection", "close")
		return writeText(w, http.StatusRequestTimeout,
			fmt.Sprintf("Request body too slow: %s must arrive within %v", name, d))
	}
	if err != nil {
		return writeText(w, http.StatusBadRequest, err.Error())
	}
	out, err := ep.fn(r.Context(), req)
	if ae, ok := errors.AsType[*apiError](err); ok {
		c.log.Debug("api call refused", "call", name, "remote", r.RemoteAddr, "status", ae.status, "err", ae.msg)
		if ae.retryAfter > 0 {
			return writeRetry(w, ae.status, ae.msg, ae.retryAfter)
		}
		return writeText(w, ae.status, ae.msg)
	}
	if err != nil {
		c.log.Error("api call failed", "call", name, "remote", r.RemoteAddr, "err", err)
		return writeText(w, http.StatusInternalServerError, "Internal server error")
	}
	body, err := json.Marshal(out)
	if err != nil {
		c.log.Error("encode api answer", "call", name, "err", err)
		return writeText(w, http.StatusInternalServerError, "Internal server error")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
	return http.StatusOK
}

// writeText sends a short error text. Django's HttpResponse* classes,
// which turku-api answers errors with, label it text/html.
func writeText(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
	return status
}

// writeRetry sends a refusal the client may retry after d.
func writeRetry(w http.ResponseWriter, status int, msg string, d time.Duration) int {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(d)))
	return writeText(w, status, msg)
}

// object returns m[key] as an object, and whether it was one.
func object(m map[string]any, key string) (map[string]any, bool) {
	o, ok := m[key].(map[string]any)
	return o, ok
}
