package agentproto

import "github.com/turku-backup/turku-storage/sessionlog"

// Checkin is one agent's checkin as it goes from the session that read it
// (sshserver's, or ping's) to the backup engine: sshserver.PullRequest and
// backup.Request are this type, so a field is added once.
type Checkin struct {
	// Machine is the UUID the session's SSH key belongs to.
	Machine string
	// Credentials are the per-source rsync logins the agent sent.
	Credentials map[string]Credential
	// RsyncAddr is the host:port where rsync reaches the agent's rsync
	// daemon: "127.0.0.1:PORT", a private endpoint carried to it; rsync
	// URLs are rsync://USER@RsyncAddr/SOURCE/.
	RsyncAddr string
	// Log receives the agent-facing lines; nil discards them.
	Log *sessionlog.Logger
}
