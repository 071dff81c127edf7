package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDaemonLoggerFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "storage.log")
	g := &globals{logLevel: "info"}
	log, closeLog, err := g.daemonLogger(path)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("session started", "machine", "u1")
	closeLog()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `msg="session started" machine=u1`) || strings.Contains(string(data), "hidden") {
		t.Errorf("log file: %q", data)
	}
	if _, _, err := g.daemonLogger(filepath.Join(t.TempDir(), "missing", "x.log")); err == nil || !strings.Contains(err.Error(), "log_file") {
		t.Errorf("unwritable log_file: got %v", err)
	}
	bad := &globals{logLevel: "loud"}
	if _, _, err := bad.daemonLogger(""); err == nil || !strings.Contains(err.Error(), `--log-level "loud"`) {
		t.Errorf("bad level: got %v", err)
	}
}
