package monitor

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Orphan is a machine with data on this unit that the key refresh no
// longer assigns here, since Since.
type Orphan struct {
	Unit  string    `json:"unit,omitempty"`
	Since time.Time `json:"since"`
}

// orphanState is the part of State the key refresh sets about machines
// that left: the orphans, and connections refused for a departed key.
type orphanState struct {
	mu      sync.Mutex // guards orphans
	orphans map[string]Orphan
	// departedRefused counts connections that offered the key of a
	// machine no longer assigned here.
	departedRefused atomic.Int64
}

// SetOrphans replaces the orphaned machines, as the last key refresh
// found them. Their sources are not exported as sources of this unit
// (SetAssigned leaves them out), so they never count as stale.
func (s *State) SetOrphans(orphans map[string]Orphan) {
	if s == nil {
		return
	}
	s.orph.mu.Lock()
	defer s.orph.mu.Unlock()
	s.orph.orphans = maps.Clone(orphans)
}

// Orphans returns a copy of the orphaned machines by UUID, for readers
// such as the dashboard.
func (s *State) Orphans() map[string]Orphan {
	s.orph.mu.Lock()
	defer s.orph.mu.Unlock()
	out := maps.Clone(s.orph.orphans)
	if out == nil {
		out = map[string]Orphan{}
	}
	return out
}

// DepartedKeyRefused counts a connection refused for offering the key of
// a machine that was assigned here and no longer is. It implements
// sshserver.Observer.
func (s *State) DepartedKeyRefused() {
	if s == nil {
		return
	}
	s.orph.departedRefused.Add(1)
}

var (
	descOrphans = prometheus.NewDesc("turku_storage_orphaned_machines",
		"Machines with data on this unit that the coordinator no longer assigns here (moved or deactivated): never counted as stale; purge them with `turku-storage orphans purge`.", nil, nil)
	descOrphanSince = prometheus.NewDesc("turku_storage_orphaned_machine_since_timestamp_seconds",
		"When the key refresh first found the machine no longer assigned to this unit, its data still here.",
		[]string{"machine", "unit"}, nil)
	descDepartedRefused = prometheus.NewDesc("turku_storage_ssh_departed_key_refusals_total",
		"Connections refused because they offered the key of a machine no longer assigned to this unit (it left within the last 30 days); also counted in turku_storage_ssh_auth_failures_total.", nil, nil)
)

// OrphanCollector returns a prometheus.Collector of the orphans and the
// departed keys refused, read at every scrape.
func (s *State) OrphanCollector() prometheus.Collector { return orphanCollector{s} }

type orphanCollector struct{ s *State }

func (c orphanCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descOrphans
	ch <- descOrphanSince
	ch <- descDepartedRefused
}

func (c orphanCollector) Collect(ch chan<- prometheus.Metric) {
	orphans := c.s.Orphans()
	ch <- prometheus.MustNewConstMetric(descOrphans, prometheus.GaugeValue, float64(len(orphans)))
	for uuid, o := range orphans {
		ch <- prometheus.MustNewConstMetric(descOrphanSince, prometheus.GaugeValue, unixSeconds(o.Since), uuid, o.Unit)
	}
	ch <- prometheus.MustNewConstMetric(descDepartedRefused, prometheus.CounterValue, float64(c.s.orph.departedRefused.Load()))
}

// OrphanStatus is one orphaned machine in a Status.
type OrphanStatus struct {
	Machine string    `json:"machine"`
	Unit    string    `json:"unit,omitempty"`
	Since   time.Time `json:"since"`
}

// orphanList is the orphans, longest orphaned first.
func (s *State) orphanList() []OrphanStatus {
	out := []OrphanStatus{}
	for uuid, o := range s.Orphans() {
		out = append(out, OrphanStatus{Machine: uuid, Unit: o.Unit, Since: o.Since})
	}
	slices.SortFunc(out, func(a, b OrphanStatus) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Machine, b.Machine))
	})
	return out
}
