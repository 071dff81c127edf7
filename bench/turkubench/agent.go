//go:build bench

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/internal/agenttest"
)

// startRsyncd starts `rsync --daemon --no-detach` on host:port with the
// configuration turku-agent writes (agenttest.WriteRsyncdConfig, as the
// tests' daemons), logging to dir/rsyncd.log.
func (s *site) startRsyncd(ctx context.Context, dir, host string, port int, mods []agenttest.Module) (*exec.Cmd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	confFile, err := agenttest.WriteRsyncdConfig(dir, host, port, filepath.Join(dir, "rsyncd.log"), mods)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("rsync", "--no-detach", "--daemon", "--config="+confFile)
	done, err := s.p.start(cmd)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, net.JoinHostPort(host, strconv.Itoa(port)), done); err != nil {
		return nil, fmt.Errorf("rsync daemon: %w", err)
	}
	return cmd, nil
}

// agentRun is one `ssh ... turku-ping-remote` as turku-agent runs it.
type agentRun struct {
	serverPort int
	m          *machine
	fwdPort    int    // -R fwdPort:fwdHost:fwdPort
	fwdHost    string // the agent's rsyncd_local_address
	cipher     string // -c, or "" for the client's default list
	extra      []string
	request    map[string]any
}

// session is a running ssh client.
type session struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *agenttest.Output // closed once ssh exited
	start  time.Time
	end    time.Time
	done   <-chan struct{}
	err    error
}

// args is turku-agent's ssh command line (ping.py call_ssh), plus what
// isolates it from this host's user configuration: the same line the
// end-to-end tests run.
func (r agentRun) args(knownHosts string) []string {
	extra := r.extra
	if r.cipher != "" {
		extra = append([]string{"-c", r.cipher}, r.extra...)
	}
	return agenttest.Ping{
		Host: "127.0.0.1", Port: r.serverPort, User: loginUser,
		Key:         agenttest.Key{Path: r.m.keyFile},
		ForwardPort: r.fwdPort, ForwardTarget: r.fwdHost,
		ExtraArgs: extra,
	}.Args(knownHosts)
}

// startAgent starts ssh and writes the request and the "." line; stdin
// stays open, as the agent keeps it, until closeStdin or the server ends
// the session.
func (s *site) startAgent(r agentRun) (*session, error) {
	sess := &session{stderr: &agenttest.Output{}}
	sess.cmd = exec.Command("ssh", r.args(s.knownHosts)...)
	sess.cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	sess.cmd.Stdout = io.Discard
	sess.cmd.Stderr = sess.stderr
	stdin, err := sess.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	sess.stdin = stdin
	data, err := json.Marshal(r.request)
	if err != nil {
		return nil, err
	}
	sess.start = time.Now()
	done, err := s.p.start(sess.cmd)
	if err != nil {
		return nil, err
	}
	finished := make(chan struct{})
	go func() {
		<-done
		sess.end = time.Now()
		sess.stderr.Close()
		close(finished)
	}()
	sess.done = finished
	// A failed write means ssh already exited; wait tells why.
	_, _ = stdin.Write(append(data, "\n.\n"...))
	return sess, nil
}

func (sess *session) closeStdin() { _ = sess.stdin.Close() }

// wait waits for ssh to exit and returns its exit code.
func (sess *session) wait(ctx context.Context, timeout time.Duration) (int, error) {
	select {
	case <-sess.done:
	case <-time.After(timeout):
		_ = sess.cmd.Process.Kill()
		<-sess.done
		return -1, fmt.Errorf("ssh did not finish within %v; stderr: %s", timeout, sess.stderr.String())
	case <-ctx.Done():
		_ = sess.cmd.Process.Kill()
		<-sess.done
		return -1, ctx.Err()
	}
	return sess.cmd.ProcessState.ExitCode(), nil
}

// elapsed is the session's wall time, connect to exit.
func (sess *session) elapsed() time.Duration { return sess.end.Sub(sess.start) }

// runAgent runs one whole session and returns its wall time; an exit code
// other than 0 is an error carrying ssh's stderr.
func (s *site) runAgent(ctx context.Context, r agentRun, timeout time.Duration) (time.Duration, string, error) {
	sess, err := s.startAgent(r)
	if err != nil {
		return 0, "", err
	}
	code, err := sess.wait(ctx, timeout)
	if err != nil {
		return 0, sess.stderr.String(), err
	}
	if code != 0 {
		return sess.elapsed(), sess.stderr.String(), fmt.Errorf("ssh exit %d: %s", code, strings.TrimSpace(sess.stderr.String()))
	}
	return sess.elapsed(), sess.stderr.String(), nil
}
