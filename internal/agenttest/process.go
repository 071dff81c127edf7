package agenttest

import (
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is the environment for the agent's processes and for a test's own
// rsync or ssh client: no ssh-agent socket (only the key given with -i may
// be offered), none of the caller's RSYNC_* settings, and a HOME of its own
// so that nothing in the user's home is read or written; extra comes last.
// The result may be appended to from several goroutines.
func Env(t testing.TB, extra ...string) []string {
	t.Helper()
	env := []string{"HOME=" + t.TempDir()}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "RSYNC_") {
			continue
		}
		env = append(env, kv)
	}
	return slices.Clip(append(env, extra...))
}

// process is a started child process; a goroutine reaps it, then closes
// its outputs and done.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // what cmd.Wait returned; set before done is closed
}

// start starts cmd, whose Stdout and Stderr are outs.
func start(cmd *exec.Cmd, outs ...*Output) (*process, error) {
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		for _, o := range outs {
			o.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL if the process is still there after
// five seconds, and waits until it is reaped.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// StartPiped starts cmd with pipes to its standard input and output, for
// a child a test talks to line by line; stopping and waiting for it stays
// with the caller.
func StartPiped(t testing.TB, cmd *exec.Cmd) (stdin io.WriteCloser, stdout io.ReadCloser) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdin, stdout
}
