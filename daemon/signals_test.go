package daemon

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
)

func TestRouteSignals(t *testing.T) {
	t.Parallel()
	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		sigs := make(chan os.Signal)
		ctx, sig, stop := RouteSignals(context.Background(), sigs, true)
		defer stop()
		sigs <- syscall.SIGHUP
		sigs <- syscall.SIGHUP // coalesced with the pending one
		// Sent on an unbuffered channel, SIGTERM is taken only once both
		// SIGHUPs are routed: one reload is pending, not two.
		sigs <- syscall.SIGTERM
		<-ctx.Done()
		if cause := context.Cause(ctx); !errors.Is(cause, ErrSignal) || cause.Error() != "signal: terminated" {
			t.Errorf("cause %v, want signal: terminated (SIGHUP must not stop serve)", cause)
		}
		<-sig.Hup
		select {
		case <-sig.Hup:
			t.Error("two SIGHUPs left two reloads pending")
		default:
		}
		if sig.Force.Err() != nil {
			t.Fatal("first SIGTERM forced the stop")
		}
		sigs <- syscall.SIGHUP // a reload during the drain stops nothing
		sigs <- os.Interrupt
		<-sig.Force.Done()
		if cause := context.Cause(sig.Force); cause.Error() != "second signal (interrupt)" {
			t.Errorf("force cause %v", cause)
		}
	})
	t.Run("other commands", func(t *testing.T) {
		t.Parallel()
		sigs := make(chan os.Signal)
		ctx, sig, stop := RouteSignals(context.Background(), sigs, false)
		defer stop()
		if sig.Hup != nil {
			t.Error("a reload channel for a command that does not reload")
		}
		sigs <- syscall.SIGHUP
		<-ctx.Done()
		if cause := context.Cause(ctx); cause.Error() != "signal: hangup" {
			t.Errorf("cause %v, want signal: hangup", cause)
		}
	})
}
