package rsync

import (
	"context"
	"net"
	"strings"
	"time"
)

// Pull is one backup: rsync as the client of the agent's daemon, through
// its tunnel, into a working tree.
type Pull struct {
	// Command is the rsync binary (rsync_command).
	Command string
	// Addr is host:port of the agent's rsync daemon.
	Addr           string
	User, Password string
	// Module is the source: the agent's rsync module.
	Module string
	// Dest is the working tree.
	Dest string
	// LinkDest is the absolute path of the base snapshot, or "".
	LinkDest string
	// Inplace is set for snapshot mode "none".
	Inplace    bool
	HardLinks  bool
	FilterFile string
	BWLimit    string
}

// Args returns the arguments of docs/protocol.md §5.3 step 3, in the old
// code's order. The password is never among them.
func (p Pull) Args() []string {
	args := []string{"--archive", "--compress", "--numeric-ids", "--delete", "--delete-excluded", "--verbose", "--stats"}
	if p.LinkDest != "" {
		args = append(args, "--link-dest="+p.LinkDest)
	}
	if p.Inplace {
		args = append(args, "--inplace")
	}
	if p.HardLinks {
		args = append(args, "--hard-links")
	}
	if p.FilterFile != "" {
		args = append(args, "--filter=merge "+p.FilterFile)
	}
	if p.BWLimit != "" {
		args = append(args, "--bwlimit="+p.BWLimit)
	}
	host, port, _ := net.SplitHostPort(p.Addr)
	return append(args, DaemonURL(p.User, host, port, p.Module), strings.TrimSuffix(p.Dest, "/")+"/")
}

// DaemonURL is the rsync:// URL of a module's root on a daemon.
func DaemonURL(user, host, port, module string) string {
	return "rsync://" + user + "@" + net.JoinHostPort(host, port) + "/" + module + "/"
}

// Run runs the pull, its output going to out, and returns the figures of
// rsync's --stats block (zero where it printed none) and nil or an
// *Error. Exit codes 0 and 24 are success (PullSucceeded) and never give
// an *Error.
func (p Pull) Run(ctx context.Context, out *Output) (TransferStats, error) {
	args := p.Args()
	out.log.Debug("rsync start", "args", args)
	start := time.Now()
	code, err := Cmd{Command: p.Command, Args: args, Password: p.Password, Stdout: out, Stderr: out}.Run(ctx)
	out.Flush()
	if err != nil {
		return out.Stats(), err
	}
	out.log.Debug("rsync done", "code", code, "duration", time.Since(start))
	if PullSucceeded(code) {
		return out.Stats(), nil
	}
	return out.Stats(), &Error{Code: code, Tail: out.Tail()}
}
