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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		if !quietExit(err) {
			fmt.Fprintf(os.Stderr, "turku-storage: %v\n", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}
