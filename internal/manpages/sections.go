package manpages

import (
	"fmt"
	"strings"
)

// manSections are the sections a command's page has beyond what cobra
// makes of its help, in groff_man(7)'s order: EXIT STATUS, ENVIRONMENT,
// FILES, EXAMPLES. Each entry is a term and its text.
type manSections struct {
	exit, env, files [][2]string
	// examples are a sentence and the command lines it introduces.
	examples [][2]string
}

// What several pages name.
var (
	manConfigFiles = [2]string{"/etc/turku-storage/config.d/*.json, *.yaml, *.yml",
		"The configuration, merged in file-name order; -c/--config-dir names another directory than /etc/turku-storage. See turku-storage.conf(5)."}
	manVarDir = [2]string{"/var/lib/turku-storage/",
		"var_dir: machines/ (a link per machine to its directory on a volume, and the ENV-SERVICE-UNIT name links), history/ (every backup attempt), machines.json (the machine key cache), reports/ (reports the API has not taken yet), ssh_host_ed25519_key, serve.lock (held by the running serve) and, without api_url, coordinator.sqlite3 (the built-in coordinator)."}
	manControlSocket = [2]string{"/run/turku-storage/control.sock",
		"control_socket: where serve answers status and restore, to root and its own user."}
	manCoordinatorDB = [2]string{"/var/lib/turku-storage/coordinator.sqlite3",
		"The built-in coordinator's machines, sources, registration auths and backup logs (without api_url only)."}
	manDocs = [2]string{"/usr/share/doc/turku-storage/",
		"README.md.gz; operations.md.gz (install, the systemd unit, monitoring, restore, migration from the Python storage unit); configuration.md.gz (every key); examples/prometheus-alerts.yml (Prometheus alert rules). Read them with zless."}
	manEnvOverride = [2]string{"TURKU_STORAGE_KEY",
		"Overrides the configuration key KEY, in upper case (every top-level key but volumes), over every file: TURKU_STORAGE_SSH_LISTEN=127.0.0.1:2222. An empty variable counts as unset."}
	manExitDefault = [][2]string{{"0", "Success."}, {"1", "An error, printed on standard error; nothing was changed by a command refused for bad input."}}
)

// manPages holds the sections of each command path's page; a page not
// named here gets manExitDefault only.
var manPages = map[string]manSections{
	"turku-storage": {
		env:   [][2]string{manEnvOverride},
		files: [][2]string{manConfigFiles, manVarDir, manControlSocket, manDocs},
		examples: [][2]string{
			{"Validate the configuration, then run the daemon (the package's systemd unit does the latter):",
				"turku-storage config check\nsystemctl enable --now turku-storage"},
			{"See what it does and what it holds:", "turku-storage status\nturku-storage snapshots\nturku-storage logs --failed"},
		},
	},
	"turku-storage serve": {
		exit: [][2]string{{"0", "Stopped by SIGTERM or SIGINT, running backups finished or cancelled."},
			{"1", "Refused to start (the configuration, var_dir in use by another serve, a listener that cannot bind, the host keys) or failed; the reason is logged."}},
		env: [][2]string{manEnvOverride,
			{"JOURNAL_STREAM", "Set by systemd when standard error goes to the journal. When it names serve's standard error and log_file is not set, serve logs to the journal directly, with priorities and the MACHINE, UNIT, SOURCE and SNAPSHOT fields (journalctl -u turku-storage MACHINE=UUID); otherwise to standard error."},
			{"NOTIFY_SOCKET, WATCHDOG_USEC", "Set by systemd for Type=notify and WatchdogSec=: serve sends READY=1, STATUS= lines and WATCHDOG=1."},
			{"GOGC", "When set, replaces serve's own garbage collector setting."}},
		files: [][2]string{manConfigFiles, manVarDir, manControlSocket, manDocs},
		examples: [][2]string{
			{"Start it, re-read the configuration and follow one machine's backups in the journal:",
				"systemctl enable --now turku-storage\nsystemctl reload turku-storage\njournalctl -u turku-storage MACHINE=UUID"},
			{"Run it in the foreground on a test configuration:", "turku-storage -c /tmp/ts serve --log-level debug"},
		},
	},
	"turku-storage config check": {
		exit:     [][2]string{{"0", "The configuration is valid; it is printed as JSON."}, {"1", "Every problem is listed, naming the file and the key."}},
		env:      [][2]string{manEnvOverride},
		files:    [][2]string{manConfigFiles},
		examples: [][2]string{{"Check an edited configuration before reloading serve:", "turku-storage config check >/dev/null && systemctl reload turku-storage"}},
	},
	"turku-storage check": {
		exit: [][2]string{{"0", "OK."}, {"1", "WARNING: past --warn-age, or something could not be read."},
			{"2", "CRITICAL: a source without a successful backup within --max-age, a machine that never backed up, a volume missing, not mounted, read-only or above its disk guard."},
			{"3", "UNKNOWN: the configuration or var_dir cannot be read."}},
		files:    [][2]string{manConfigFiles, manVarDir},
		examples: [][2]string{{"As a Nagios or Icinga command (NRPE):", "command[turku_storage]=/usr/bin/turku-storage check --max-age 48h --warn-age 30h"}},
	},
	"turku-storage status": {
		files:    [][2]string{manControlSocket},
		examples: [][2]string{{"Watch the running backups:", "turku-storage status --watch"}, {"For a script:", "turku-storage status --json | jq '.backups[] | .source'"}},
	},
	"turku-storage logs": {
		files:    [][2]string{manVarDir},
		examples: [][2]string{{"The last failures of one source, with their summaries:", "turku-storage logs web1 etc --failed -n 20"}},
	},
	"turku-storage snapshots": {
		files: [][2]string{manVarDir},
		examples: [][2]string{{"Every machine, then one source's snapshots:", "turku-storage snapshots\nturku-storage snapshots web1 etc"},
			{"Count the space taken (slow, once):", "turku-storage snapshots --du"}},
	},
	"turku-storage restore": {
		exit: [][2]string{{"0", "Done."}, {"1", "Bad input (machine, source, snapshot, path) or another error."},
			{"3", "The machine has no restore session (run turku-agent-ping --restore on it)."},
			{"4", "The agent's rsync daemon refused the user or password."}, {"5", "rsync failed."}},
		files:    [][2]string{manControlSocket, manVarDir},
		examples: [][2]string{{"On the machine, then here:", "turku-agent-ping --restore\nturku-storage restore web1 etc --path /etc/hosts --dry-run"}},
	},
	"turku-storage ping": {
		exit: [][2]string{{"0", "Every due source was backed up."}, {"1", "Otherwise."}},
		examples: [][2]string{{"A line of authorized_keys for an agent, with OpenSSH kept in front:",
			`no-pty,no-agent-forwarding,no-X11-forwarding,no-user-rc,command="turku-storage ping UUID" ssh-ed25519 AAAA...`}},
	},
	"turku-storage update-config": {
		files:    [][2]string{manConfigFiles, manVarDir},
		examples: [][2]string{{"Register with turku-api the first time:", "turku-storage update-config --api-auth-name NAME --api-auth-secret SECRET"}},
	},
	"turku-storage sources run-now": {
		files:    [][2]string{manCoordinatorDB},
		examples: [][2]string{{"Back up a new daily source at the agent's next ping, not tomorrow:", "turku-storage sources run-now web1 etc"}},
	},
	"turku-storage auth create": {
		files:    [][2]string{manCoordinatorDB},
		examples: [][2]string{{"A second machine registration auth, for another team:", "turku-storage auth create machine --name 'Team B Registrations'"}},
	},
	"turku-storage coordinator export": {
		files:    [][2]string{manCoordinatorDB},
		examples: [][2]string{{"Move to turku-api:", "turku-storage coordinator export -o fixture.json\npython3 -m django loaddata fixture.json"}},
	},
}

// manExtras is the roff of the sections manPages gives path.
func manExtras(path string) string {
	m := manPages[path]
	if m.files == nil && strings.Count(path, " ") == 2 {
		// machines list, sources list, ...: the built-in coordinator's.
		if p := strings.Fields(path)[1]; p == "machines" || p == "sources" {
			m.files = [][2]string{manCoordinatorDB}
		}
	}
	var b strings.Builder
	section := func(title string, entries [][2]string) {
		if len(entries) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n.SH %s\n", title)
		for _, e := range entries {
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fP\n%s\n", roffEscape(e[0]), roffEscape(e[1]))
		}
	}
	section("EXIT STATUS", entriesOr(m.exit, manExitDefault))
	section("ENVIRONMENT", m.env)
	section("FILES", m.files)
	if len(m.examples) > 0 {
		b.WriteString("\n.SH EXAMPLES\n")
		for _, e := range m.examples {
			fmt.Fprintf(&b, ".PP\n%s\n.PP\n.RS\n.EX\n%s\n.EE\n.RE\n", roffEscape(e[0]), roffEscape(e[1]))
		}
	}
	return b.String()
}

// entriesOr is a, or b when a is empty.
func entriesOr(a, b [][2]string) [][2]string {
	if len(a) > 0 {
		return a
	}
	return b
}

// roffEscape makes text safe as roff input lines: each backslash as \e,
// every hyphen a minus sign (\-, so options and commands copy as typed),
// and no line starting with a control character.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
