package agenttest

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// dieWithParent makes the kernel kill the child when the test binary dies
// without running its cleanups (a -timeout panic, a kill), so no rsync
// daemon or ssh client outlives a test run.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// AsNobody skips the test unless it runs as root, and otherwise returns
// the attributes that run a child as nobody (uid and gid 65534): another
// local user, to show it cannot reach what belongs to the agent.
func AsNobody(t testing.TB) *syscall.SysProcAttr {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
