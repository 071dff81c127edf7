// Command turku-storage is the Turku backup storage unit: one daemon with an
// embedded SSH server that agents connect to, pulling their data with rsync
// into hard-linked snapshots.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/turku-backup/turku-storage/daemon"
)

func main() {
	// First of all: a signal that arrives while the daemon starts must
	// not take its default action (SIGHUP would end the process).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)

	g := &globals{stderr: os.Stderr, stdout: os.Stdout, stdin: os.Stdin}
	root := newRootWith(g)
	// SIGHUP reloads serve; any other command stops on it.
	cmd, _, err := root.Find(os.Args[1:])
	ctx, sig, stop := daemon.RouteSignals(context.Background(), sigs, err == nil && cmd.Name() == "serve")
	g.signals = sig
	err = root.ExecuteContext(ctx)
	stop()
	if err != nil {
		if !quietExit(err) {
			fmt.Fprintf(os.Stderr, "turku-storage: %v\n", err)
		}
		os.Exit(exitCode(err))
	}
}
