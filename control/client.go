package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/turku-backup/turku-storage/monitor"
)

// ErrNotRunning is returned when no serve answers on the control socket.
var ErrNotRunning = errors.New("turku-storage serve is not running (no control socket)")

// call sends one request to the socket at path and decodes the answer.
// It gives up, closing the connection, when ctx ends.
func call(ctx context.Context, path string, req request) (*response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotRunning)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	data, _ := json.Marshal(req)
	// A server that refuses us answers before reading, so a failed write
	// may still be followed by its answer.
	_, werr := c.Write(append(data, '\n'))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			err = werr
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer: %w", path, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("control socket %s: %s", path, resp.Error)
	}
	return &resp, nil
}

// StatusTimeout bounds one GetStatus.
const StatusTimeout = 10 * time.Second

// GetStatus asks the serve listening on path for its status, waiting at
// most StatusTimeout for the answer.
func GetStatus(ctx context.Context, path string) (*Status, error) {
	ctx, cancel := context.WithTimeout(ctx, StatusTimeout)
	defer cancel()
	resp, err := call(ctx, path, request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("control socket %s: answer without status", path)
	}
	return resp.Status, nil
}

// WaitRestore returns machine's restore session, waiting for one to start
// until ctx ends (then it returns ctx's cause).
func WaitRestore(ctx context.Context, path, machine string) (*monitor.Session, error) {
	resp, err := call(ctx, path, request{Op: OpWaitRestore, Machine: machine})
	if err != nil {
		return nil, err
	}
	if resp.Restore == nil {
		return nil, fmt.Errorf("control socket %s: answer without a restore session", path)
	}
	return resp.Restore, nil
}

// LogRestore has the serve listening on path log a restore's start or end.
func LogRestore(ctx context.Context, path string, r RestoreLog) error {
	resp, err := call(ctx, path, request{Op: OpRestoreLog, Restore: &r})
	if err != nil {
		return err
	}
	if !resp.Logged {
		return fmt.Errorf("control socket %s: restore not logged", path)
	}
	return nil
}
