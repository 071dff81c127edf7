package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestRestartNeeded: each setting bound at start is named when it
// changes, alone; settings a reload applies are not.
func TestRestartNeeded(t *testing.T) {
	t.Parallel()
	base := func() *Config {
		return &Config{
			Name: "primary", Secret: "s", APIURL: "https://api/v1", APICAFile: "/ca.pem", APITimeout: time.Minute,
			SSHListen: ":22", SSHHostKeyFiles: []string{"/k1"}, SSHPingUser: "turku-ping",
			SSHPingHostKeys: []string{"ssh-ed25519 AAAA"}, LogFile: "systemd", UpdateConfigInterval: time.Hour,
			CoordinatorListen: ":8410", CoordinatorTLSCert: "/c.pem", CoordinatorTLSKey: "/k.pem",
			MachineRegistrationSecret: "mrs", MetricsListen: ":9000", ControlSocket: "/run/c.sock",
			Volumes: []Volume{{Name: "a", Path: "/a"}}, MaxConcurrentBackups: 2, SnapshotMode: "link-dest",
		}
	}
	if got := RestartNeeded(base(), base()); len(got) != 0 {
		t.Errorf("unchanged: %v, want none", got)
	}
	tests := []struct {
		key    string
		change func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "other" }},
		{"secret", func(c *Config) { c.Secret = "other" }},
		{"api_url", func(c *Config) { c.APIURL = "" }},
		{"api_ca_file", func(c *Config) { c.APICAFile = "" }},
		{"api_timeout", func(c *Config) { c.APITimeout = time.Second }},
		{"ssh_listen", func(c *Config) { c.SSHListen = ":2222" }},
		{"ssh_host_key_files", func(c *Config) { c.SSHHostKeyFiles = append(c.SSHHostKeyFiles, "/k2") }},
		{"ssh_ping_user", func(c *Config) { c.SSHPingUser = "other" }},
		{"ssh_ping_host_keys", func(c *Config) { c.SSHPingHostKeys = nil }},
		{"log_file", func(c *Config) { c.LogFile = "" }},
		{"update_config_interval", func(c *Config) { c.UpdateConfigInterval = time.Minute }},
		{"coordinator_listen", func(c *Config) { c.CoordinatorListen = "127.0.0.1:8410" }},
		{"coordinator_tls_cert", func(c *Config) { c.CoordinatorTLSCert = "/c2.pem" }},
		{"coordinator_tls_key", func(c *Config) { c.CoordinatorTLSKey = "/k2.pem" }},
		{"machine_registration_secret", func(c *Config) { c.MachineRegistrationSecret = "" }},
		{"metrics_listen", func(c *Config) { c.MetricsListen = "" }},
		{"control_socket", func(c *Config) { c.ControlSocket = "/run/d.sock" }},
		{"coordinator_insecure_listen", func(c *Config) { c.CoordinatorInsecureListen = true }},
		{"var_dir", func(c *Config) { c.VarDir = "/srv/var" }},
		{"ssh_max_startups", func(c *Config) { c.SSHMaxStartups = MaxStartups{10, 30, 100} }},
		{"ssh_per_source_max_startups", func(c *Config) { c.SSHPerSourceMaxStartups = 3 }},
		{"ssh_trusted_networks", func(c *Config) { c.SSHTrustedNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} }},
		{"restore_max_lifetime", func(c *Config) { c.RestoreMaxLifetime = time.Hour }},
		{"ssh_max_connections_per_machine", func(c *Config) { c.SSHMaxConnectionsPerMachine = 8 }},
		{"ssh_max_sessions_per_machine", func(c *Config) { c.SSHMaxSessionsPerMachine = 1 }},
		{"ssh_session_request_timeout", func(c *Config) { c.SSHSessionRequestTimeout = 10 * time.Second }},
		{"tunnel_port_range", func(c *Config) { c.TunnelPortRange = PortRange{50000, 60000} }},
		{"report_spool_max_count", func(c *Config) { c.ReportSpoolMaxCount = 5 }},
		{"report_spool_max_bytes", func(c *Config) { c.ReportSpoolMaxBytes = 5 << 20 }},
		// A reload applies these.
		{"", func(c *Config) { c.Volumes = append(c.Volumes, Volume{Name: "b", Path: "/b"}) }},
		{"", func(c *Config) { c.MaxConcurrentBackups = 5 }},
		{"", func(c *Config) { c.SnapshotMode = "none" }},
	}
	for _, tt := range tests {
		b := base()
		tt.change(b)
		var want []string
		if tt.key != "" {
			want = []string{tt.key}
		}
		if got := RestartNeeded(base(), b); !slices.Equal(got, want) {
			t.Errorf("changing %q: %v, want %v", tt.key, got, want)
		}
	}
}
