package history

import (
	"cmp"
	"slices"
)

// Entry is one attempt of a machine, as `logs --json` prints it.
type Entry struct {
	Machine string `json:"machine"`
	Attempt
	DurationSeconds float64 `json:"duration_seconds"`
}

// Entries returns the attempts of machines (nil: every machine with a
// history), only source's when source is not empty, newest first.
func (s *Store) Entries(machines []string, source string) ([]Entry, error) {
	if machines == nil {
		var err error
		if machines, err = s.Machines(); err != nil {
			return nil, err
		}
	}
	var out []Entry
	for _, m := range machines {
		recs, err := s.Read(m)
		if err != nil {
			return nil, err
		}
		for _, a := range recs {
			if source != "" && a.Source != source {
				continue
			}
			out = append(out, Entry{Machine: m, Attempt: a, DurationSeconds: a.Duration().Seconds()})
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		return cmp.Or(b.End.Compare(a.End), cmp.Compare(a.Machine, b.Machine))
	})
	return out, nil
}

// WithUnit returns the machines whose history records the unit name
// unit (a machine whose every attempt failed before it was placed has
// no name links, only this), sorted.
func (s *Store) WithUnit(unit string) ([]string, error) {
	all, err := s.Entries(nil, "")
	if err != nil {
		return nil, err
	}
	var found []string
	for _, e := range all {
		if e.Unit == unit && !slices.Contains(found, e.Machine) {
			found = append(found, e.Machine)
		}
	}
	slices.Sort(found)
	return found, nil
}
