package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Backend is one implementation of the API, freshly set up for one case.
type Backend interface {
	// Handler serves POST /v1/<call>.
	Handler() http.Handler
	// Storage is the registered storage unit the suite calls as.
	Storage() (name, secret string)
	// AddMachine assigns a machine (uuid must be a random, version 4
	// UUID) with unit name unit and SSH key key to the storage unit,
	// with one source "etc" (path /etc) that is not due.
	AddMachine(t *testing.T, uuid, unit, key string)
	// MakeDue makes a machine's source due now.
	MakeDue(t *testing.T, uuid, source string)
	// AddStorage registers a second storage unit.
	AddStorage(t *testing.T, name, secret string)
	// AddRegistrationAuth creates a storage registration auth and returns
	// its name and secret.
	AddRegistrationAuth(t *testing.T) (name, secret string)
}

// UUIDs as agents make them (version 4), which pass turku-api's checks.
const (
	machineUUID = "9b2d7c1e-4f3a-4e8b-a6d5-3c7e1f9a2b4d"
	otherUUID   = "c4e8a1f2-7b3d-4a6e-9f1c-2d5b8e7a3c6f"
	machineKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDT7aGVsbG8 agent@web1"
)

// Django's content type for the plain error texts turku-api answers with.
const errorContentType = "text/html; charset=utf-8"

type obj = map[string]any

// step is one request and what must come back. Body is sent as JSON,
// except a string, which is sent as it is. A nil wantJSON compares the
// body as text with wantText; otherwise the body must be this JSON.
type step struct {
	name        string
	method      string // default POST
	contentType string // default application/json; "-" for none
	call        string
	body        any
	wantCode    int
	wantText    string
	anyText     bool // the text is the parser's own words: not compared
	wantJSON    any
}

// Run runs the whole contract against backends made by newBackend, one
// per case.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t)
			b.AddMachine(t, machineUUID, "web1", machineKey)
			var reg obj
			if c.setup != nil {
				reg = c.setup(t, b)
			}
			name, secret := b.Storage()
			auth := obj{"name": name, "secret": secret}
			for _, s := range c.steps(auth, reg) {
				do(t, b.Handler(), s)
			}
		})
	}
}

func do(t *testing.T, h http.Handler, s step) {
	t.Helper()
	var body []byte
	switch v := s.body.(type) {
	case string:
		body = []byte(v)
	case nil:
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	method := s.method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, "/v1/"+s.call, bytes.NewReader(body))
	switch s.contentType {
	case "":
		req.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		req.Header.Set("Content-Type", s.contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := rec.Body.String()
	label := s.name + ": " + method + " " + s.call
	if rec.Code != s.wantCode {
		t.Fatalf("%s: got %d %q, want %d", label, rec.Code, got, s.wantCode)
	}
	switch {
	case s.wantCode == http.StatusMethodNotAllowed:
		if a := rec.Header().Get("Allow"); a != "POST" {
			t.Errorf("%s: Allow %q, want POST", label, a)
		}
	case s.wantCode != http.StatusOK:
		if ct := rec.Header().Get("Content-Type"); ct != errorContentType {
			t.Errorf("%s: Content-Type %q, want %q", label, ct, errorContentType)
		}
		if !s.anyText && got != s.wantText {
			t.Errorf("%s: body %q, want %q", label, got, s.wantText)
		}
	default:
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", label, ct)
		}
		var v any
		if err := json.Unmarshal([]byte(got), &v); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", label, got, err)
		}
		if msg := match(s.wantJSON, v, "body"); msg != "" {
			t.Errorf("%s: %s\ngot %s", label, msg, got)
		}
	}
}

// match compares a JSON answer with what is wanted and says where they
// differ ("" when they do not). An object in want holding the key some
// only constrains the keys it lists.
func match(want, got any, path string) string {
	wo, isObj := want.(obj)
	if !isObj {
		if !cmp.Equal(want, got) {
			return fmt.Sprintf("%s = %#v, want %#v", path, got, want)
		}
		return ""
	}
	gotObj, ok := got.(map[string]any)
	if !ok {
		return fmt.Sprintf("%s = %#v, want an object", path, got)
	}
	_, partial := wo[some]
	for k, w := range wo {
		if k == some {
			continue
		}
		g, ok := gotObj[k]
		if !ok {
			return fmt.Sprintf("%s.%s missing", path, k)
		}
		if msg := match(w, g, path+"."+k); msg != "" {
			return msg
		}
	}
	if !partial {
		for k := range gotObj {
			if _, ok := wo[k]; !ok {
				return fmt.Sprintf("%s.%s present, not wanted", path, k)
			}
		}
	}
	return ""
}
