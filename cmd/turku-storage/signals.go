package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// errSignal is the cause of a command's context when a signal stopped it.
var errSignal = errors.New("signal")

// signals is how the process's signals reach a command. main starts
// catching them before anything else runs, so that no signal arriving
// during start-up takes its default action (for SIGHUP: end the process).
type signals struct {
	// hup receives one value per SIGHUP (coalesced) when SIGHUP means
	// reload; nil otherwise.
	hup <-chan struct{}
	// force ends when a second SIGTERM/SIGINT arrives: stop at once. Its
	// cause names the signal.
	force context.Context
}

// routeSignals turns the signals read from sigs into a context that ends
// on the first SIGTERM or SIGINT (cause errSignal), sig.force that ends on
// the second (after which a third takes the default action), and sig.hup. With reload false, SIGHUP stops the command
// like SIGTERM (a short-lived command whose terminal went away). stop ends
// the routing and waits for it.
func routeSignals(parent context.Context, sigs <-chan os.Signal, reload bool) (ctx context.Context, sig signals, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	force, cancelForce := context.WithCancelCause(context.Background())
	hup := make(chan struct{}, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		stopping := false
		for {
			var s os.Signal
			select {
			case <-done:
				return
			case s = <-sigs:
			}
			switch {
			case s == syscall.SIGHUP && reload:
				select {
				case hup <- struct{}{}:
				default: // a reload is already pending
				}
			case !stopping:
				stopping = true
				cancel(fmt.Errorf("%w: %v", errSignal, s))
			default:
				cancelForce(fmt.Errorf("second signal (%v)", s))
				// A third ends the process by the default action, should
				// stopping at once itself hang.
				signal.Reset(os.Interrupt, syscall.SIGTERM)
			}
		}
	})
	sig = signals{force: force}
	if reload {
		sig.hup = hup
	}
	return ctx, sig, func() {
		close(done)
		wg.Wait()
		cancel(nil)
		cancelForce(nil)
	}
}
