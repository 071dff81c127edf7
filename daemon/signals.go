package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ErrSignal is the cause of a command's context when a signal stopped it.
var ErrSignal = errors.New("signal")

// Signals is how the process's signals reach a command. main starts
// catching them before anything else runs, so that no signal arriving
// during start-up takes its default action (for SIGHUP: end the process).
// The zero value never fires.
type Signals struct {
	// Hup receives one value per SIGHUP (coalesced) when SIGHUP means
	// reload; nil otherwise.
	Hup <-chan struct{}
	// Force ends when a second SIGTERM/SIGINT arrives: stop at once. Its
	// cause names the signal.
	Force context.Context
}

// RouteSignals turns the signals read from sigs into a context that ends
// on the first SIGTERM or SIGINT (cause ErrSignal), sig.Force that ends on
// the second (after which a third takes the default action), and sig.Hup.
// With reload false, SIGHUP stops the command like SIGTERM (a short-lived
// command whose terminal went away). stop ends the routing and waits for
// it.
func RouteSignals(parent context.Context, sigs <-chan os.Signal, reload bool) (ctx context.Context, sig Signals, stop func()) {
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
				poke(hup) // unless a reload is already pending
			case !stopping:
				stopping = true
				cancel(fmt.Errorf("%w: %v", ErrSignal, s))
			default:
				cancelForce(fmt.Errorf("second signal (%v)", s))
				// A third ends the process by the default action, should
				// stopping at once itself hang.
				signal.Reset(os.Interrupt, syscall.SIGTERM)
			}
		}
	})
	sig = Signals{Force: force}
	if reload {
		sig.Hup = hup
	}
	return ctx, sig, func() {
		close(done)
		wg.Wait()
		cancel(nil)
		cancelForce(nil)
	}
}
