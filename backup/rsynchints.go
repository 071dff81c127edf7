package backup

import "strings"

// rsyncHints say, for rsync's terser complaints about the agent's side,
// what they mean there. A failed source's summary (which the coordinator
// and `turku-storage logs` show) carries the line after rsync's own.
// The texts are rsync's: clientserver.c (@ERROR lines) and socket.c.
var rsyncHints = []struct {
	match, meaning string
}{
	{"@ERROR: chroot failed", "the source's path does not exist on the agent, or is not readable there (check its path in the agent's sources.d)"},
	{"@ERROR: chdir failed", "the source's path does not exist on the agent, or is not readable there (check its path in the agent's sources.d)"},
	{"@ERROR: auth failed", "the agent's rsync daemon refused the source's user name or password: the agent's configuration and the coordinator disagree (run turku-update-config on the agent)"},
	{"@ERROR: Unknown module", "the agent's rsync daemon does not serve this source: it was removed or renamed in the agent's sources.d (run turku-update-config on the agent)"},
	{"@ERROR: access denied", "the agent's rsync daemon refused the connection (its hosts allow/deny)"},
	{"@ERROR: max connections", "the agent's rsync daemon already serves as many connections as it allows"},
	{"Connection refused", "nothing listened at the agent's end of the tunnel: the agent's rsync daemon is not running (it stopped or failed to start; see the agent's log)"},
}

// rsyncHint is what the first line of tail that rsyncHints knows means on
// the agent, "" when none does.
func rsyncHint(tail []string) string {
	for _, line := range tail {
		for _, h := range rsyncHints {
			if strings.Contains(line, h.match) {
				return h.meaning
			}
		}
	}
	return ""
}
