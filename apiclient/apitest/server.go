package apitest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/turku-backup/turku-storage/apiclient"
)

// Request is one recorded call.
type Request struct {
	Call   string
	Status int
	Body   map[string]any
}

// Source is a source as the fake API keeps it.
type Source struct {
	apiclient.Source
	// Due reports whether storage_ping_checkin lists the source; a
	// successful report clears it, as turku-api moves date_next_backup on.
	Due bool
}

// Machine is a machine assigned to a storage unit.
type Machine struct {
	Storage string
	Info    apiclient.MachineInfo
	Sources map[string]*Source
}

// Server is the fake API. Its fields are guarded by mu; use the methods.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	regAuths map[string]string // storage registration auths: name -> secret
	storages map[string]string // registered storage units: name -> secret
	// units are the registered storage units' published flag and
	// space_available, as placement reads them (placement.go).
	units    map[string]*unit
	machines map[string]*Machine
	requests []Request
	failNext int            // answer the next N calls with HTTP 500
	failCall map[string]int // answer the next N calls of one name with HTTP 500
	hung     map[string]*hang
}

// hang is a call the API hangs on.
type hang struct {
	arrived chan struct{}
	release chan struct{}
}

// New starts a fake API on loopback; it is closed by t.Cleanup-style Close.
func New() *Server { return start(httptest.NewServer) }

func start(listen func(http.Handler) *httptest.Server) *Server {
	s := &Server{
		regAuths: map[string]string{},
		storages: map[string]string{},
		units:    map[string]*unit{},
		machines: map[string]*Machine{},
	}
	s.Server = listen(http.HandlerFunc(s.handle))
	return s
}

// NewTLS starts a fake API serving HTTPS with a test certificate.
func NewTLS() *Server { return start(httptest.NewTLSServer) }

// CAPEM returns the PEM of the TLS server's certificate, to trust it.
func (s *Server) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// BaseURL of the API, like https://turku.example.com/v1.
func (s *Server) BaseURL() string { return s.Server.URL + "/v1" }

// AddRegistrationAuth creates a storage registration auth.
func (s *Server) AddRegistrationAuth(name, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regAuths[name] = secret
}

// AddStorage registers a storage unit directly.
func (s *Server) AddStorage(name, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storages[name] = secret
	s.units[name] = &unit{published: true}
}

// AddMachine assigns a machine to storage unit storage.
func (s *Server) AddMachine(storage, uuid string, info apiclient.MachineInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.machines[uuid] = &Machine{Storage: storage, Info: info, Sources: map[string]*Source{}}
}

// RemoveMachine deletes a machine (as deactivating it in turku-api would).
func (s *Server) RemoveMachine(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.machines, uuid)
}

// AddSource adds a due source to a machine.
func (s *Server) AddSource(uuid, name string, src apiclient.Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.machines[uuid].Sources[name] = &Source{Source: src, Due: true}
}

// SetDue marks a source due or not.
func (s *Server) SetDue(uuid, name string, due bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.machines[uuid].Sources[name].Due = due
}

// Due reports whether a source is due.
func (s *Server) Due(uuid, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.machines[uuid].Sources[name].Due
}

// FailNext makes the next n calls answer HTTP 500.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// FailCalls makes the next n calls named call answer HTTP 500, as
// turku-api does while its database is down.
func (s *Server) FailCalls(call string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCall == nil {
		s.failCall = map[string]int{}
	}
	s.failCall[call] = n
}

// Requests returns the recorded calls named call ("" for all).
func (s *Server) Requests(call string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if call == "" || r.Call == call {
			out = append(out, r)
		}
	}
	return out
}

// Reports returns the successful storage_ping_source_update reports, in
// order, decoded.
func (s *Server) Reports() []Report {
	var out []Report
	for _, r := range s.Requests("storage_ping_source_update") {
		if r.Status != http.StatusOK {
			continue
		}
		m, _ := r.Body["machine"].(map[string]any)
		uuid, _ := m["uuid"].(string)
		srcs, _ := m["sources"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(srcs)) {
			b, _ := json.Marshal(srcs[name])
			var rep apiclient.SourceReport
			_ = json.Unmarshal(b, &rep)
			out = append(out, Report{Machine: uuid, Source: name, SourceReport: rep})
		}
	}
	return out
}

// Report is one delivered source report.
type Report struct {
	Machine string
	Source  string
	apiclient.SourceReport
}

// httpError mirrors Django's plain-text error responses.
type httpError struct {
	status int
	body   string
}

func fail(status int, body string) *httpError { return &httpError{status, body} }

// Hang makes the API hang on call, as turku-api does when its database is
// stuck: each request for call is read and then held, unanswered, until
// release is called; then it is processed and answered as usual (a client
// that gave up meanwhile does not undo it, as it does not in Django).
// arrived receives once per held request. Call release before Close.
func (s *Server) Hang(call string) (arrived <-chan struct{}, release func()) {
	h := &hang{arrived: make(chan struct{}, 64), release: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hung == nil {
		s.hung = map[string]*hang{}
	}
	s.hung[call] = h
	var once sync.Once
	return h.arrived, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.hung, call)
			s.mu.Unlock()
			close(h.release)
		})
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	call := strings.TrimPrefix(r.URL.Path, "/v1/")
	body, herr := s.parse(r)
	s.mu.Lock()
	h := s.hung[call]
	s.mu.Unlock()
	if h != nil {
		select {
		case h.arrived <- struct{}{}:
		default:
		}
		<-h.release
	}
	var reply any
	if herr == nil {
		reply, herr = s.dispatch(call, body)
	}
	status := http.StatusOK
	if herr != nil {
		status = herr.status
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Call: call, Status: status, Body: body})
	s.mu.Unlock()
	if herr != nil {
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "POST")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, herr.body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

func (s *Server) parse(r *http.Request) (map[string]any, *httpError) {
	if r.Method != http.MethodPost {
		return nil, fail(http.StatusMethodNotAllowed, "")
	}
	if r.Header.Get("Content-Type") != "application/json" {
		return nil, fail(http.StatusBadRequest, "Bad Content-Type (expected application/json)")
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil, fail(http.StatusBadRequest, err.Error())
	}
	return body, nil
}

func (s *Server) dispatch(call string, body map[string]any) (any, *httpError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return nil, fail(http.StatusInternalServerError, "Server Error (500)")
	}
	if s.failCall[call] > 0 {
		s.failCall[call]--
		return nil, fail(http.StatusInternalServerError, "Server Error (500)")
	}
	switch call {
	case "storage_update_config":
		return s.storageUpdateConfig(body)
	case "storage_ping_checkin":
		return s.storagePingCheckin(body)
	case "storage_ping_source_update":
		return s.storagePingSourceUpdate(body)
	case "health":
		return map[string]any{"healthy": true, "date": "2026-11-25T00:00:00+00:00",
			"counts": map[string]int{"storage": len(s.storages), "machine": len(s.machines)}}, nil
	}
	return nil, fail(http.StatusNotFound, fmt.Sprintf("<h1>Not Found</h1><p>The requested resource %q was not found on this server.</p>", "/v1/"+call))
}

// storageLogin follows turku-api's storage_login: missing name/secret or a
// wrong secret is 403; an unknown storage is allowed only for
// storage_update_config (then registration auth decides).
func (s *Server) storageLogin(body map[string]any, updateConfig bool) (string, bool, *httpError) {
	raw, present := body["storage"]
	if !present {
		return "", false, fail(http.StatusBadRequest, `Missing required option "storage"`)
	}
	// turku-api checks `"name" in storage`; on anything but an object
	// that fails (a string's substring test) or crashes: refuse.
	st, _ := raw.(map[string]any)
	name, ok1 := st["name"].(string)
	secret, ok2 := st["secret"].(string)
	if !ok1 || !ok2 {
		return "", false, fail(http.StatusForbidden, "Bad auth")
	}
	want, known := s.storages[name]
	if !known {
		if updateConfig {
			return name, false, nil
		}
		return "", false, fail(http.StatusForbidden, "Bad auth")
	}
	if secret != want {
		return "", false, fail(http.StatusForbidden, "Bad auth")
	}
	return name, true, nil
}

func (s *Server) storageUpdateConfig(body map[string]any) (any, *httpError) {
	name, known, herr := s.storageLogin(body, true)
	if herr != nil {
		return nil, herr
	}
	st := body["storage"].(map[string]any)
	if !known {
		auth, _ := body["auth"].(map[string]any)
		an, _ := auth["name"].(string)
		as, _ := auth["secret"].(string)
		if an == "" || as == "" || s.regAuths[an] != as {
			return nil, fail(http.StatusForbidden, "Bad auth")
		}
	}
	if msg := storageProblems(st, !known); msg != "" {
		return nil, fail(http.StatusBadRequest, "Validation error: {"+msg+"}")
	}
	s.storages[name] = st["secret"].(string)
	s.updateUnit(name, st)
	machines := map[string]any{}
	for uuid, m := range s.machines {
		if m.Storage == name {
			machines[uuid] = map[string]any{"environment_name": nullable(m.Info.EnvironmentName),
				"service_name": nullable(m.Info.ServiceName), "unit_name": m.Info.UnitName,
				"comment": nullable(m.Info.Comment), "ssh_public_key": m.Info.SSHPublicKey}
		}
	}
	return map[string]any{"machines": machines}, nil
}

// storageProblems is what turku-api's full_clean of a storage unit says
// about the fields this fake checks, in the model's field order, as the
// inside of a Python dict ("" when nothing): on registration the SSH host,
// port and user are required; the port is 1..65535 and the space figures
// are positive 32-bit integers.
func storageProblems(st map[string]any, isNew bool) string {
	var out []string
	add := func(field, msg string) { out = append(out, fmt.Sprintf("'%s': ['%s']", field, msg)) }
	text := func(field string) {
		switch v, ok := st[field]; {
		case ok && v == nil:
			add(field, "This field cannot be null.")
		case isNew && (!ok || v == ""):
			add(field, "This field cannot be blank.")
		}
	}
	integer := func(field string, lo, hi float64) {
		v, ok := st[field]
		switch {
		case !ok:
			if isNew && field == "ssh_ping_port" { // no default
				add(field, "This field cannot be null.")
			}
		case v == nil:
			add(field, "This field cannot be null.")
		default:
			if msg := integerProblem(v, lo, hi); msg != "" {
				add(field, msg)
			}
		}
	}
	if v, ok := st["published"]; ok {
		if _, ok := djangoBool(v); !ok {
			add("published", fmt.Sprintf("“%v” value must be either True or False.", v))
		}
	}
	text("ssh_ping_host")
	integer("ssh_ping_port", 1, 65535)
	text("ssh_ping_user")
	integer("space_total", 0, 2147483647)
	integer("space_available", 0, 2147483647)
	return strings.Join(out, ", ")
}

// nullable is how turku-api sends an optional text field: null when unset.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// integerProblem is Django's complaint about v as a model integer field
// (int(v), then the range validators), or "" when it has none.
func integerProblem(v any, lo, hi float64) string {
	var n float64
	switch x := v.(type) {
	case float64:
		n = math.Trunc(x) // int() truncates
	case bool:
		if x {
			n = 1
		}
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return fmt.Sprintf("“%s” value must be an integer.", x)
		}
		n = float64(i)
	default:
		return fmt.Sprintf("“%v” value must be an integer.", x)
	}
	if n < lo {
		return fmt.Sprintf("Ensure this value is greater than or equal to %.0f.", lo)
	}
	if n > hi {
		return fmt.Sprintf("Ensure this value is less than or equal to %.0f.", hi)
	}
	return ""
}

func (s *Server) storageMachine(body map[string]any) (string, *Machine, *httpError) {
	name, _, herr := s.storageLogin(body, false)
	if herr != nil {
		return "", nil, herr
	}
	raw, present := body["machine"]
	if !present {
		return "", nil, fail(http.StatusBadRequest, `Missing required option "machine"`)
	}
	// `"uuid" in machine` on a string is a substring test: it fails.
	m, _ := raw.(map[string]any)
	uuid, ok := m["uuid"].(string)
	if !ok {
		return "", nil, fail(http.StatusBadRequest, `Missing required option "machine.uuid"`)
	}
	machine, ok := s.machines[uuid]
	if !ok || machine.Storage != name {
		return "", nil, fail(http.StatusNotFound, "Machine not found")
	}
	return uuid, machine, nil
}

func (s *Server) storagePingCheckin(body map[string]any) (any, *httpError) {
	uuid, m, herr := s.storageMachine(body)
	if herr != nil {
		return nil, herr
	}
	due := map[string]apiclient.Source{}
	for name, src := range m.Sources {
		if src.Due {
			due[name] = src.Source
		}
	}
	return map[string]any{"machine": map[string]any{
		"uuid": uuid, "environment_name": nullable(m.Info.EnvironmentName),
		"service_name": nullable(m.Info.ServiceName), "unit_name": m.Info.UnitName,
		"scheduled_sources": due,
	}}, nil
}

func (s *Server) storagePingSourceUpdate(body map[string]any) (any, *httpError) {
	_, m, herr := s.storageMachine(body)
	if herr != nil {
		return nil, herr
	}
	srcs, ok := body["machine"].(map[string]any)["sources"].(map[string]any)
	if !ok {
		return nil, fail(http.StatusBadRequest, `Missing required option "machine.sources"`)
	}
	for name := range srcs {
		if _, ok := m.Sources[name]; !ok {
			return nil, fail(http.StatusNotFound, "Source not found")
		}
	}
	for name, v := range srcs {
		d, _ := v.(map[string]any)
		if ok, _ := d["success"].(bool); ok {
			m.Sources[name].Due = false
		}
	}
	return map[string]any{}, nil
}
