package agentproto

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    *Request
		wantErr string
	}{
		{
			name: "agent checkin",
			in:   `{"verbose": true, "action": "checkin", "port": 51234, "sources": {"etc": {"username": "u", "password": "p"}}}` + "\n.\n",
			want: &Request{Verbose: true, Action: ActionCheckin, Port: 51234, Sources: map[string]Credential{"etc": {Username: "u", Password: "p"}}},
		},
		{
			name: "default action, EOF without dot",
			in:   `{"port": 1}`,
			want: &Request{Action: ActionCheckin, Port: 1, Sources: map[string]Credential{}},
		},
		{
			name: "restore, CRLF dot",
			in:   "{\"action\": \"restore\",\n \"port\": 65535}\r\n.\r\n",
			want: &Request{Action: ActionRestore, Port: 65535, Sources: map[string]Credential{}},
		},
		{name: "missing port", in: "{}\n.\n", wantErr: `request has no "port"`},
		{name: "port zero", in: `{"port": 0}` + "\n.\n", wantErr: "invalid port 0"},
		{name: "port too big", in: `{"port": 65536}` + "\n.\n", wantErr: "invalid port 65536"},
		{name: "port fraction", in: `{"port": 22.5}` + "\n.\n", wantErr: "invalid port 22.5"},
		{name: "port string", in: `{"port": "22"}` + "\n.\n", wantErr: `invalid port "22"`},
		{name: "port null", in: `{"port": null}` + "\n.\n", wantErr: `request has no "port"`},
		{name: "unknown action", in: `{"port": 22, "action": "shell"}` + "\n.\n", wantErr: `unknown action "shell"`},
		{name: "not json", in: "hello\n.\n", wantErr: "malformed request JSON"},
		{name: "empty", in: ".\n", wantErr: "empty request"},
		{name: "trailing data", in: `{"port": 1} {"port": 2}` + "\n.\n", wantErr: "data after the JSON object"},
		{name: "bad credentials", in: `{"port": 1, "sources": {"etc": "x"}}` + "\n.\n", wantErr: `source "etc": credentials`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadStopsAtDot proves the reader does not wait for EOF: the agent
// keeps stdin open after the "." line.
func TestReadStopsAtDot(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		// The write of the dot line returns once Read consumed it; the pipe
		// then stays open, as the agent's stdin does.
		_, _ = io.WriteString(pw, "{\"port\": 2222}\n.\n")
	}()
	got, err := Read(bufio.NewReader(pr))
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 2222 {
		t.Errorf("got port %d, want 2222", got.Port)
	}
	pw.Close()
}

func TestReadTooLarge(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("x", MaxRequestBytes+10) + "\n.\n"
	_, err := Read(bufio.NewReader(strings.NewReader(in)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	in = strings.Repeat(" \n", MaxRequestBytes) + "{}\n.\n"
	_, err = Read(bufio.NewReader(strings.NewReader(in)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("many lines: got %v, want ErrTooLarge", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"verbose": true, "action": "checkin", "port": 51234, "sources": {"etc": {"username": "u", "password": "p"}}}`))
	f.Add([]byte(`{"action": "restore", "port": 1}`))
	f.Add([]byte(`{"port": 1e3}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Parse(data)
		if err != nil {
			return
		}
		if req.Port < 1 || req.Port > 65535 {
			t.Fatalf("accepted port %d", req.Port)
		}
		if req.Action != ActionCheckin && req.Action != ActionRestore {
			t.Fatalf("accepted action %q", req.Action)
		}
	})
}
