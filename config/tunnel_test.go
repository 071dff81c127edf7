package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTunnelAndSpoolSettings(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := loadWith(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := (PortRange{49152, 65535}); c.TunnelPortRange != want {
			t.Errorf("tunnel_port_range %v, want %v (turku-agent's range)", c.TunnelPortRange, want)
		}
		if c.ReportSpoolMaxCount != 10000 || c.ReportSpoolMaxBytes != 256<<20 {
			t.Errorf("report spool limits %d, %d; want 10000, 256 MiB", c.ReportSpoolMaxCount, c.ReportSpoolMaxBytes)
		}
	})
	t.Run("set and round trip", func(t *testing.T) {
		c, err := loadWith(t, `"tunnel_port_range": "50000-50100", "report_spool_max_count": 20, "report_spool_max_bytes": 2097152`)
		if err != nil {
			t.Fatal(err)
		}
		if want := (PortRange{50000, 50100}); c.TunnelPortRange != want {
			t.Errorf("tunnel_port_range %v, want %v", c.TunnelPortRange, want)
		}
		if c.ReportSpoolMaxCount != 20 || c.ReportSpoolMaxBytes != 2<<20 {
			t.Errorf("report spool limits %d, %d; want 20, 2 MiB", c.ReportSpoolMaxCount, c.ReportSpoolMaxBytes)
		}
		out, err := json.Marshal(map[string]any{"tunnel_port_range": c.TunnelPortRange})
		if err != nil || string(out) != `{"tunnel_port_range":"50000-50100"}` {
			t.Errorf("marshalled %s, %v", out, err)
		}
	})
	errs := []struct {
		name, extra, want string
	}{
		{"range words", `"tunnel_port_range": "high"`, `config.d/a.json: tunnel_port_range: want a port range like "49152-65535", got "high"`},
		{"range a number", `"tunnel_port_range": 50000`, `config.d/a.json: tunnel_port_range: want a port range like "49152-65535", got a number`},
		{"range privileged", `"tunnel_port_range": "80-65535"`, `config.d/a.json: tunnel_port_range: "80-65535": want 1024 <= MIN <= MAX <= 65535`},
		{"range reversed", `"tunnel_port_range": "60000-50000"`, `config.d/a.json: tunnel_port_range: "60000-50000": want 1024 <= MIN <= MAX <= 65535`},
		{"range beyond 65535", `"tunnel_port_range": "50000-70000"`, `config.d/a.json: tunnel_port_range: "50000-70000": want 1024 <= MIN <= MAX <= 65535`},
		{"spool count zero", `"report_spool_max_count": 0`, `config.d/a.json: report_spool_max_count: 0 is out of range 1..1073741824`},
		{"spool bytes tiny", `"report_spool_max_bytes": 1000`, `config.d/a.json: report_spool_max_bytes: 1000 is out of range 1048576..1099511627776`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantProblems(t, err, []string{tt.want})
		})
	}
}

// TestAPIURLLoopbackHTTPWarned: a plain http api_url on loopback sends the
// storage secret to whoever holds that port while the API is down.
func TestAPIURLLoopbackHTTPWarned(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://127.0.0.1:8000/v1", "plain http on loopback (127.0.0.1 port 8000, outside tunnel_port_range"},
		{"http://localhost/v1", "plain http on loopback (localhost port 80"},
		{"http://[::1]:50000/v1", "port 50000, inside tunnel_port_range 49152-65535, so an agent's restore may take it"},
		{"http://127.8.0.1:8000/", "plain http on loopback"},
		{"https://127.0.0.1:8000/v1", ""},
		{"http://api.example.com/v1", ""},
		{"http://192.0.2.1:8000/v1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c, err := loadWith(t, `"api_url": "`+tt.url+`"`)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(c.Warnings, "\n")
			if tt.want == "" {
				if strings.Contains(got, "api_url") {
					t.Errorf("warned: %s", got)
				}
				return
			}
			if !strings.Contains(got, "config.d/a.json: api_url: ") || !strings.Contains(got, tt.want) {
				t.Errorf("warnings %q, want one containing %q", got, tt.want)
			}
		})
	}
}
