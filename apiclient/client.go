package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"time"
)

// Sentinel errors for the API's documented failures; match with errors.Is.
var (
	ErrBadRequest = errors.New("bad request")
	ErrBadAuth    = errors.New("bad auth")
	ErrNotFound   = errors.New("not found")
)

// ErrNotSent marks a call that certainly never reached the API: no
// connection could be made (refused, unresolvable, TLS handshake failed).
// Repeating such a call cannot make the API act twice, which is not true
// of a call that timed out after it was sent.
var ErrNotSent = errors.New("request not sent")

// Reply limits: what each call can legitimately return, with room to
// spare. A reply over its limit is an error naming the limit, read no
// further and never acted on.
//
// storage_update_config has no limit on the whole reply: its machine
// list grows with the fleet (about 200 bytes per machine with an Ed25519
// key, 900 with RSA-4096), and any fixed cap is a fleet size at which
// every key refresh fails. It is decoded as a stream, one machine at a
// time, and each entry has a limit instead (machineEntryLimit).
const (
	// checkinReplyLimit holds one machine's due sources with their filter
	// and exclude lists.
	checkinReplyLimit = 1 << 20
	// smallReplyLimit is for replies that are an empty object or a few
	// fields (storage_ping_source_update, health) and for error bodies,
	// of which only the first 200 characters are shown.
	smallReplyLimit = 64 << 10
	// machineEntryLimit bounds one entry of storage_update_config's reply
	// (a machine with its UUID, names, comment and public key; RSA-16384,
	// the largest key OpenSSH makes, is 2.8 KB) and any other member of
	// the reply object.
	machineEntryLimit = 64 << 10
)

// replyLimit returns the largest reply call may send.
func replyLimit(call string) int64 {
	if call == "storage_ping_checkin" {
		return checkinReplyLimit
	}
	return smallReplyLimit
}

// ErrReplyTooLarge is returned when a reply exceeds what its call can
// legitimately hold.
var ErrReplyTooLarge = errors.New("reply too large")

// Error is a non-200 reply. Body is the API's short text ("Bad auth",
// "Machine not found").
type Error struct {
	Call   string
	Status int
	Body   string
}

func (e *Error) Error() string {
	body := e.Body
	if body == "" {
		body = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Call, e.Status, body)
}

// Is maps HTTP statuses to the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	case ErrBadAuth:
		return e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	}
	return false
}

// Options configures a Client.
type Options struct {
	// URL is the API base, e.g. https://turku.example.com/v1.
	URL string
	// Storage authenticates every call.
	Storage StorageAuth
	// HTTPClient carries TLS settings (CA file) or an in-process transport;
	// nil means a default client.
	HTTPClient *http.Client
	// CAFile, when set, is a PEM bundle that replaces the system roots for
	// verifying the API's certificate (config key api_ca_file).
	CAFile string
	// Timeout bounds each call whose context has no deadline of its own;
	// 0 means 30 s.
	Timeout time.Duration
	// UserAgent is sent on every call.
	UserAgent string
}

// Client calls the storage-facing endpoints of the coordinator API.
type Client struct {
	base    string
	storage StorageAuth
	http    *http.Client
	timeout time.Duration
	agent   string
}

// New returns a Client. It does not contact the API.
func New(opts Options) (*Client, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("api_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("api_ca_file %s: no PEM certificates found", opts.CAFile)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	agent := opts.UserAgent
	if agent == "" {
		agent = "turku-storage"
	}
	return &Client{
		base:    strings.TrimRight(opts.URL, "/"),
		storage: opts.Storage,
		http:    hc,
		timeout: timeout,
		agent:   agent,
	}, nil
}

// UpdateConfig registers or refreshes this storage unit and returns the
// machines that may log in. req.Storage.Name/Secret default to the client's.
func (c *Client) UpdateConfig(ctx context.Context, req UpdateConfigRequest) (*UpdateConfigResponse, error) {
	if req.Storage.Name == "" {
		req.Storage.Name = c.storage.Name
	}
	if req.Storage.Secret == "" {
		req.Storage.Secret = c.storage.Secret
	}
	var resp UpdateConfigResponse
	if err := c.call(ctx, "storage_update_config", req, &resp); err != nil {
		return nil, err
	}
	if resp.Machines == nil {
		return nil, &Error{Call: "storage_update_config", Status: http.StatusOK, Body: `reply has no "machines" object`}
	}
	return &resp, nil
}

// PingCheckin asks which sources of machine uuid are due now.
func (c *Client) PingCheckin(ctx context.Context, uuid string) (*CheckinResponse, error) {
	var resp CheckinResponse
	req := checkinRequest{Storage: c.storage, Machine: machineRef{UUID: uuid}}
	if err := c.call(ctx, "storage_ping_checkin", req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// SourceUpdate reports the outcome of one source's run.
func (c *Client) SourceUpdate(ctx context.Context, uuid, source string, r SourceReport) error {
	req := sourceUpdateRequest{
		Storage: c.storage,
		Machine: sourceUpdateMachine{UUID: uuid, Sources: map[string]SourceReport{source: r}},
	}
	var resp map[string]any
	return c.call(ctx, "storage_ping_source_update", req, &resp)
}

// Health calls the health endpoint.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var resp Health
	if err := c.call(ctx, "health", struct{}{}, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// call posts body to the API's endpoint name and decodes the reply into
// out. The client's Timeout bounds it unless ctx has a deadline: a caller
// that would rather wait for the answer than be left not knowing whether
// the API acted (a report) says so with its own.
func (c *Client) call(ctx context.Context, name string, body, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("%s: encode request: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+name, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	// turku-api compares Content-Type exactly: no charset parameter.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	var conn connTrace
	req = req.WithContext(httptrace.WithClientTrace(ctx, conn.trace()))
	resp, err := c.http.Do(req)
	if err != nil {
		if conn.neverConnected() || dialFailed(err) {
			return fmt.Errorf("%s: %w: %w", name, ErrNotSent, err)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	if sd, ok := out.(streamDecoder); ok && resp.StatusCode == http.StatusOK {
		body := &readErrors{r: resp.Body}
		if err := sd.decodeStream(body); err != nil {
			switch {
			case errors.Is(err, errEntryTooLarge):
				return fmt.Errorf("%s: %w: an entry over the %s limit", name, ErrReplyTooLarge, sizeString(machineEntryLimit))
			case body.err != nil:
				return fmt.Errorf("%s: read reply: %w", name, body.err)
			}
			return fmt.Errorf("%s: malformed reply: %w", name, err)
		}
		return nil
	}
	limit := replyLimit(name)
	if resp.StatusCode != http.StatusOK {
		limit = smallReplyLimit
	}
	tooLarge := func() error {
		return fmt.Errorf("%s: %w: over the %s limit for this call", name, ErrReplyTooLarge, sizeString(limit))
	}
	if resp.StatusCode == http.StatusOK && resp.ContentLength > limit {
		return tooLarge()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%s: read reply: %w", name, err)
	}
	if int64(len(data)) > limit {
		if resp.StatusCode != http.StatusOK {
			// An error page is still an error; its start says which.
			return &Error{Call: name, Status: resp.StatusCode, Body: shortBody(data)}
		}
		return tooLarge()
	}
	if resp.StatusCode != http.StatusOK {
		return &Error{Call: name, Status: resp.StatusCode, Body: shortBody(data)}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: malformed reply: %w", name, err)
	}
	return nil
}

// connTrace records whether a call got as far as a connection.
type connTrace struct {
	mu            sync.Mutex
	asked, gotOne bool
}

func (t *connTrace) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			t.mu.Lock()
			t.asked = true
			t.mu.Unlock()
		},
		GotConn: func(httptrace.GotConnInfo) {
			t.mu.Lock()
			t.gotOne = true
			t.mu.Unlock()
		},
	}
}

// neverConnected reports whether the transport looked for a connection
// and never got one, so nothing was written. A transport that reports
// neither (an in-process handler) proves nothing.
func (t *connTrace) neverConnected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.asked && !t.gotOne
}

// dialFailed reports whether err is a failure to connect at all.
func dialFailed(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns) ||
		errors.As(err, &verify) || errors.As(err, &record)
}

// sizeString writes a limit in the unit it was chosen in.
func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// shortBody keeps an error body readable in one log line.
func shortBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}
