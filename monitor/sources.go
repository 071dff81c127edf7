package monitor

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// SourceStatus is what the live state knows of one source: the newest
// of its snapshots on disk at start, its history and every report since.
// Status lists those failing with these names.
type SourceStatus struct {
	Machine string `json:"machine"`
	Unit    string `json:"unit"`
	Source  string `json:"source"`
	// LastSuccess and LastAttempt are zero when unknown.
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// FirstSeen is the earliest this unit knows of the source.
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Failures in a row since the last success, the first beginning at
	// FailingSince; LastError is the newest one's error (a summary's
	// first line).
	Failures     int       `json:"consecutive_failures"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	LastError    string    `json:"last_error"`
}

// Sources returns every source the state knows of, assigned here or not,
// sorted by machine and source.
func (s *State) Sources() []SourceStatus {
	s.mu.Lock()
	out := make([]SourceStatus, 0, len(s.sources))
	for k, v := range s.sources {
		out = append(out, v.status(k))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SourceStatus) int {
		return cmp.Or(cmp.Compare(a.Machine, b.Machine), cmp.Compare(a.Source, b.Source))
	})
	return out
}

// status copies the source k's state; s.mu is held.
func (v *sourceState) status(k sourceKey) SourceStatus {
	return SourceStatus{Machine: k.machine, Unit: v.unit, Source: k.source,
		LastSuccess: v.lastSuccess, LastAttempt: v.lastAttempt, FirstSeen: v.firstSeen,
		Failures: v.failures, FailingSince: v.failingSince, LastError: v.lastError}
}

// Assigned returns the machines assigned to this unit as the last key
// refresh (or the key cache) listed them; known is false before either.
func (s *State) Assigned() (machines map[string]Assignment, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.assigned == nil {
		return nil, false
	}
	return maps.Clone(s.assigned), true
}

// Outcomes is how many backups finished since start, successful or not:
// a reader that caches what the disk says of the snapshots reads again
// when it changes.
func (s *State) Outcomes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results["success"] + s.results["failure"]
}
