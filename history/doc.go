// Package history keeps what happened to every source this storage unit
// backs up, across restarts: one append-only file of attempts per machine
// under VAR_DIR/history (time, duration, result, summary, sizes, failures
// in a row), bounded by compaction, and when each assigned machine was
// first seen. The backup engine appends to it; check, logs, status and
// the metrics read it, so a source that keeps failing, or a machine that
// never backs up, is seen even after a restart; `logs` selects and prints
// it with Query, FindMachine and WriteEntries. It imports nothing of ours
// but internal/atomicfile and internal/words.
package history
