package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSSHLimits(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, err := loadWith(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := (MaxStartups{30, 30, 100}); c.SSHMaxStartups != want {
			t.Errorf("ssh_max_startups %v, want %v", c.SSHMaxStartups, want)
		}
		if c.SSHPerSourceMaxStartups != 10 || c.RestoreMaxLifetime != 3*time.Hour || c.SSHTrustedNetworks != nil {
			t.Errorf("got %d, %v, %v; want 10, 3h, none", c.SSHPerSourceMaxStartups, c.RestoreMaxLifetime, c.SSHTrustedNetworks)
		}
		if c.SSHMaxConnectionsPerMachine != 4 || c.SSHMaxSessionsPerMachine != 2 || c.SSHSessionRequestTimeout != 5*time.Second {
			t.Errorf("per machine: got %d connections, %d sessions, %v; want 4, 2, 5s",
				c.SSHMaxConnectionsPerMachine, c.SSHMaxSessionsPerMachine, c.SSHSessionRequestTimeout)
		}
	})
	t.Run("set", func(t *testing.T) {
		c, err := Load(writeConfig(t, map[string]string{"a.yaml": strings.Join([]string{
			"name: n", "secret: s", "volumes: {v: {path: /v}}",
			`ssh_max_startups: "10:30:60"`, "ssh_per_source_max_startups: 40",
			"ssh_trusted_networks: [192.0.2.0/24, 2001:db8::1, 198.51.100.7/16]",
			"restore_max_lifetime: 8h",
			"ssh_max_connections_per_machine: 6", "ssh_max_sessions_per_machine: 3", "ssh_session_request_timeout: 10",
		}, "\n")}))
		if err != nil {
			t.Fatal(err)
		}
		if want := (MaxStartups{10, 30, 60}); c.SSHMaxStartups != want {
			t.Errorf("ssh_max_startups %v, want %v", c.SSHMaxStartups, want)
		}
		want := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("198.51.0.0/16")}
		if diff := cmp.Diff(want, c.SSHTrustedNetworks, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("ssh_trusted_networks (-want +got):\n%s", diff)
		}
		if c.SSHPerSourceMaxStartups != 40 || c.RestoreMaxLifetime != 8*time.Hour {
			t.Errorf("got %d, %v", c.SSHPerSourceMaxStartups, c.RestoreMaxLifetime)
		}
		if c.SSHMaxConnectionsPerMachine != 6 || c.SSHMaxSessionsPerMachine != 3 || c.SSHSessionRequestTimeout != 10*time.Second {
			t.Errorf("per machine: got %d, %d, %v; want 6, 3, 10s",
				c.SSHMaxConnectionsPerMachine, c.SSHMaxSessionsPerMachine, c.SSHSessionRequestTimeout)
		}
	})
	t.Run("single number is a hard limit", func(t *testing.T) {
		c, err := loadWith(t, `"ssh_max_startups": 50`)
		if err != nil {
			t.Fatal(err)
		}
		if want := (MaxStartups{50, 100, 50}); c.SSHMaxStartups != want {
			t.Errorf("got %v, want %v", c.SSHMaxStartups, want)
		}
	})
	t.Run("printed form loads back", func(t *testing.T) {
		c, err := loadWith(t, `"ssh_max_startups": "10:30:60", "ssh_trusted_networks": ["192.0.2.0/24"], "restore_max_lifetime": "90m", "ssh_session_request_timeout": "7s"`)
		if err != nil {
			t.Fatal(err)
		}
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var printed map[string]any
		if err := json.Unmarshal(data, &printed); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, k := range []string{"ssh_max_startups", "ssh_per_source_max_startups", "ssh_trusted_networks", "restore_max_lifetime",
			"ssh_max_connections_per_machine", "ssh_max_sessions_per_machine", "ssh_session_request_timeout"} {
			keys = append(keys, fmt.Sprintf("%q: %s", k, mustJSON(t, printed[k])))
		}
		again, err := loadWith(t, strings.Join(keys, ", "))
		if err != nil {
			t.Fatalf("printed %s does not load: %v", strings.Join(keys, ", "), err)
		}
		if again.SSHMaxStartups != c.SSHMaxStartups || again.RestoreMaxLifetime != c.RestoreMaxLifetime ||
			again.SSHPerSourceMaxStartups != c.SSHPerSourceMaxStartups || len(again.SSHTrustedNetworks) != 1 ||
			again.SSHTrustedNetworks[0] != c.SSHTrustedNetworks[0] || again.SSHSessionRequestTimeout != c.SSHSessionRequestTimeout ||
			again.SSHMaxConnectionsPerMachine != c.SSHMaxConnectionsPerMachine || again.SSHMaxSessionsPerMachine != c.SSHMaxSessionsPerMachine {
			t.Errorf("round trip of %s changed the values", strings.Join(keys, ", "))
		}
	})
	errs := []struct {
		name, extra, want string
	}{
		{"max_startups words", `"ssh_max_startups": "lots"`, `config.d/a.json: ssh_max_startups: want "start:rate:full" like "30:30:100", got "lots"`},
		{"max_startups two parts", `"ssh_max_startups": "10:30"`, `config.d/a.json: ssh_max_startups: want "start:rate:full" like "30:30:100", got "10:30"`},
		{"max_startups start above full", `"ssh_max_startups": "100:30:10"`, `config.d/a.json: ssh_max_startups: "100:30:10": want 1 <= start <= full and rate 0..100`},
		{"max_startups rate", `"ssh_max_startups": "10:130:100"`, `config.d/a.json: ssh_max_startups: "10:130:100": want 1 <= start <= full and rate 0..100`},
		{"per source zero", `"ssh_per_source_max_startups": 0`, `config.d/a.json: ssh_per_source_max_startups: 0 is out of range 1..100000`},
		{"trusted not a network", `"ssh_trusted_networks": ["office"]`, `config.d/a.json: ssh_trusted_networks[0]: want a network like 192.0.2.0/24 or 2001:db8::/48, got "office"`},
		{"restore lifetime", `"restore_max_lifetime": "forever"`, `config.d/a.json: restore_max_lifetime: want a duration like "5m" or a number of seconds, got "forever"`},
		{"connections per machine zero", `"ssh_max_connections_per_machine": 0`, `config.d/a.json: ssh_max_connections_per_machine: 0 is out of range 1..1000`},
		{"sessions per machine zero", `"ssh_max_sessions_per_machine": 0`, `config.d/a.json: ssh_max_sessions_per_machine: 0 is out of range 1..1000`},
		{"sessions beyond connections", `"ssh_max_connections_per_machine": 2, "ssh_max_sessions_per_machine": 3`,
			`config.d/a.json: ssh_max_sessions_per_machine: 3 is more than ssh_max_connections_per_machine (2): each session needs a connection`},
		{"request timeout too long", `"ssh_session_request_timeout": "1m"`,
			`config.d/a.json: ssh_session_request_timeout: 1m0s is out of range 1s..30s (the login grace time bounds it anyway)`},
		{"request timeout too short", `"ssh_session_request_timeout": "100ms"`,
			`config.d/a.json: ssh_session_request_timeout: 100ms is out of range 1s..30s (the login grace time bounds it anyway)`},
		{"request timeout words", `"ssh_session_request_timeout": "soon"`,
			`config.d/a.json: ssh_session_request_timeout: want a duration like "5m" or a number of seconds, got "soon"`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadWith(t, tt.extra)
			wantProblems(t, err, []string{tt.want})
		})
	}
}
