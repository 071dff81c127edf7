package config

import "slices"

// RestartNeeded lists the settings that differ between a and b and are
// bound at start (listeners, keys, identity, logging): a reload keeps their
// running values, and only a restart applies them.
func RestartNeeded(a, b *Config) []string {
	var out []string
	diff := func(key string, same bool) {
		if !same {
			out = append(out, key)
		}
	}
	diff("name", a.Name == b.Name)
	diff("secret", a.Secret == b.Secret)
	diff("api_url", a.APIURL == b.APIURL)
	diff("api_ca_file", a.APICAFile == b.APICAFile)
	diff("api_timeout", a.APITimeout == b.APITimeout)
	diff("ssh_listen", a.SSHListen == b.SSHListen)
	diff("ssh_host_key_files", slices.Equal(a.SSHHostKeyFiles, b.SSHHostKeyFiles))
	diff("ssh_ping_user", a.SSHPingUser == b.SSHPingUser)
	diff("ssh_ping_host_keys", slices.Equal(a.SSHPingHostKeys, b.SSHPingHostKeys))
	diff("log_file", a.LogFile == b.LogFile)
	diff("update_config_interval", a.UpdateConfigInterval == b.UpdateConfigInterval)
	diff("coordinator_listen", a.CoordinatorListen == b.CoordinatorListen)
	diff("coordinator_tls_cert", a.CoordinatorTLSCert == b.CoordinatorTLSCert)
	diff("coordinator_tls_key", a.CoordinatorTLSKey == b.CoordinatorTLSKey)
	diff("machine_registration_secret", a.MachineRegistrationSecret == b.MachineRegistrationSecret)
	diff("metrics_listen", a.MetricsListen == b.MetricsListen)
	diff("control_socket", a.ControlSocket == b.ControlSocket)
	diff("coordinator_insecure_listen", a.CoordinatorInsecureListen == b.CoordinatorInsecureListen)
	// The report queue and the key cache keep the directory they started with.
	diff("var_dir", a.VarDir == b.VarDir)
	// The SSH server's admission and session limits are set when it starts.
	diff("ssh_max_startups", a.SSHMaxStartups == b.SSHMaxStartups)
	diff("ssh_per_source_max_startups", a.SSHPerSourceMaxStartups == b.SSHPerSourceMaxStartups)
	diff("ssh_trusted_networks", slices.Equal(a.SSHTrustedNetworks, b.SSHTrustedNetworks))
	diff("restore_max_lifetime", a.RestoreMaxLifetime == b.RestoreMaxLifetime)
	diff("ssh_max_connections_per_machine", a.SSHMaxConnectionsPerMachine == b.SSHMaxConnectionsPerMachine)
	diff("ssh_max_sessions_per_machine", a.SSHMaxSessionsPerMachine == b.SSHMaxSessionsPerMachine)
	diff("ssh_session_request_timeout", a.SSHSessionRequestTimeout == b.SSHSessionRequestTimeout)
	diff("tunnel_port_range", a.TunnelPortRange == b.TunnelPortRange)
	// The report queue is built once, with its limits.
	diff("report_spool_max_count", a.ReportSpoolMaxCount == b.ReportSpoolMaxCount)
	diff("report_spool_max_bytes", a.ReportSpoolMaxBytes == b.ReportSpoolMaxBytes)
	// The dashboard's listener, its TLS pair, password file and age
	// thresholds are read when it starts.
	diff("web_listen", a.WebListen == b.WebListen)
	diff("web_tls_cert", a.WebTLSCert == b.WebTLSCert)
	diff("web_tls_key", a.WebTLSKey == b.WebTLSKey)
	diff("web_auth_file", a.WebAuthFile == b.WebAuthFile)
	diff("web_max_age", a.WebMaxAge == b.WebMaxAge)
	diff("web_warn_age", a.WebWarnAge == b.WebWarnAge)
	return out
}
