package rsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// killDelay is how long a cancelled rsync's process group gets after
	// SIGTERM before SIGKILL.
	killDelay = 2 * time.Second
	// waitDelay is the last resort: after it, Wait kills rsync and
	// abandons its output even if some process still holds it open.
	waitDelay = 10 * time.Second
)

// Error is an unsuccessful rsync run.
type Error struct {
	// Code is rsync's exit status, or -1 if it was killed by a signal.
	Code int
	// Tail holds the last lines rsync printed.
	Tail []string
}

func (e *Error) Error() string {
	if e.Code < 0 {
		return "rsync was killed"
	}
	return fmt.Sprintf("rsync exited with return code %d", e.Code)
}

// AuthFailed reports whether the daemon refused the user or password
// ("@ERROR: auth failed on module M", rsync's clientserver.c).
func (e *Error) AuthFailed() bool { return e.said("auth failed") }

// UnknownModule reports whether the daemon has no module of the name
// asked for ("@ERROR: Unknown module 'M'").
func (e *Error) UnknownModule() bool { return e.said("Unknown module") }

func (e *Error) said(s string) bool {
	for _, l := range e.Tail {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// PullSucceeded reports whether a pull's exit code counts as a good
// backup: 0, or 24, "some files vanished before they could be
// transferred" (docs/protocol.md §5.3 step 3).
func PullSucceeded(code int) bool { return code == 0 || code == 24 }

// Cmd is one run of the rsync client.
type Cmd struct {
	// Command is the rsync binary (rsync_command), looked up in PATH.
	Command string
	Args    []string
	// Password goes to rsync as RSYNC_PASSWORD, in its environment only,
	// never among the arguments.
	Password string
	// Stdout and Stderr receive rsync's output; nil discards it. The same
	// writer for both is written from one goroutine at a time.
	Stdout, Stderr io.Writer
}

// Run runs the command until it exits and returns its exit status (-1
// when a signal ended it). The error is set only when rsync could not be
// run at all. rsync's environment holds PATH and RSYNC_PASSWORD only: no
// secrets of ours, no inherited RSYNC_* knobs. rsync runs in its own
// process group; when ctx ends the whole group gets SIGTERM, and SIGKILL
// if anything is left after a grace period: rsync forks a receiver,
// which on SIGTERM only sets a flag and waits for the network.
func (c Cmd) Run(ctx context.Context) (int, error) {
	cmd := exec.CommandContext(ctx, c.Command, c.Args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "RSYNC_PASSWORD=" + c.Password}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var mu sync.Mutex // guards kill
	var kill *time.Timer
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		mu.Lock()
		kill = time.AfterFunc(killDelay, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		mu.Unlock()
		return syscall.Kill(-pgid, syscall.SIGTERM)
	}
	cmd.WaitDelay = waitDelay
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	err := cmd.Run()
	mu.Lock()
	if kill != nil {
		kill.Stop()
	}
	mu.Unlock()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &exitErr):
		return exitErr.ExitCode(), nil
	default:
		return -1, fmt.Errorf("run %s: %w", c.Command, err)
	}
}
