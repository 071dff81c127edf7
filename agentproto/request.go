package agentproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxRequestBytes bounds the request an agent may send; a real one is a few
// hundred bytes per source.
const MaxRequestBytes = 64 << 10

// Actions an agent may ask for.
const (
	ActionCheckin = "checkin"
	ActionRestore = "restore"
)

// ErrTooLarge is returned when no "." line arrives within MaxRequestBytes.
var ErrTooLarge = fmt.Errorf("request larger than %d bytes", MaxRequestBytes)

// Credential is the per-source rsync login the agent generated for this run.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Request is the agent's session request.
type Request struct {
	Verbose bool
	// Action is ActionCheckin or ActionRestore.
	Action string
	// Port is the agent's rsync daemon port, the one it reverse-forwarded.
	Port int
	// Sources holds the credentials the agent sent, by source name.
	Sources map[string]Credential
}

// wireRequest mirrors the agent's JSON; pointers tell missing from zero.
type wireRequest struct {
	Verbose *bool                      `json:"verbose"`
	Action  *string                    `json:"action"`
	Port    json.RawMessage            `json:"port"`
	Sources map[string]json.RawMessage `json:"sources"`
}

// Read reads the request from r up to the line holding only "." (or EOF),
// never further, so the agent can keep its stdin open. r is read one byte at
// a time through br; callers that keep reading afterwards pass the same
// *bufio.Reader.
func Read(br *bufio.Reader) (*Request, error) {
	var buf bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if buf.Len()+len(line) > MaxRequestBytes {
			return nil, ErrTooLarge
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			buf.Write(line)
			continue
		}
		if strings.TrimRight(string(line), "\r\n") == "." {
			break
		}
		buf.Write(line)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
	}
	return Parse(buf.Bytes())
}

// Parse decodes and validates a request body.
func Parse(data []byte) (*Request, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty request: want a JSON object followed by a \".\" line")
	}
	var w wireRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("malformed request JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed request: data after the JSON object")
	}
	req := &Request{Action: ActionCheckin, Sources: map[string]Credential{}}
	if w.Verbose != nil {
		req.Verbose = *w.Verbose
	}
	if w.Action != nil {
		switch *w.Action {
		case ActionCheckin, ActionRestore:
			req.Action = *w.Action
		default:
			return nil, fmt.Errorf("unknown action %q: want %q or %q", *w.Action, ActionCheckin, ActionRestore)
		}
	}
	if w.Port == nil || string(w.Port) == "null" {
		return nil, errors.New(`request has no "port"`)
	}
	// A JSON number only: the agent sends an integer, never a string.
	port, err := strconv.ParseInt(string(w.Port), 10, 32)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("invalid port %.20s: want an integer from 1 to 65535", w.Port)
	}
	req.Port = int(port)
	for name, raw := range w.Sources {
		var c Credential
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, fmt.Errorf("source %q: credentials must be an object with string username and password", name)
		}
		req.Sources[name] = c
	}
	return req, nil
}
