package backup

import "time"

// Observer is told how each source's backup goes, for metrics and live
// status; cmd passes a *monitor.State. Calls come from the sessions'
// goroutines and must not block.
type Observer interface {
	// BackupPhase says the source's backup entered phase
	// (monitor.PhaseWaiting or monitor.PhaseRunning). In PhaseRunning, files returns how many files rsync transferred so far
	// (its --verbose lines); it is nil in PhaseWaiting.
	BackupPhase(machine, unit, source, phase string, files func() int64)
	// BackupFinished says it ended, successfully or not, after running
	// from begin to end; summary is the report's (for a failure, the
	// error first). Every source that began gets exactly one.
	BackupFinished(machine, unit, source string, ok bool, begin, end time.Time, summary string)
}

type nopObserver struct{}

func (nopObserver) BackupPhase(string, string, string, string, func() int64)                  {}
func (nopObserver) BackupFinished(string, string, string, bool, time.Time, time.Time, string) {}
