package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (docs/operations.md, "Monitoring"). Dashboards and the
// alert rules in examples/ rely on them: do not rename.
var (
	descBackups = prometheus.NewDesc("turku_storage_backups_total",
		"Source backups finished, by result (success, failure).", []string{"result"}, nil)
	descDuration = prometheus.NewDesc("turku_storage_backup_duration_seconds",
		"Duration of source backups, from begin to report.", nil, nil)
	descReceived = prometheus.NewDesc("turku_storage_backup_received_bytes_total",
		"Bytes received from agents through checkin tunnels.", nil, nil)
	descLastSuccess = prometheus.NewDesc("turku_storage_source_last_success_timestamp_seconds",
		"When the source's last successful backup finished (from the newest snapshot on disk at start).",
		[]string{"machine", "unit", "source"}, nil)
	descLastAttempt = prometheus.NewDesc("turku_storage_source_last_attempt_timestamp_seconds",
		"When the source's last backup attempt ended, successful or not.",
		[]string{"machine", "unit", "source"}, nil)
	descAssigned = prometheus.NewDesc("turku_storage_source_assigned_timestamp_seconds",
		"When this unit first saw the source (its first attempt, or its newest snapshot at start): with no last success, the source is late from then.",
		[]string{"machine", "unit", "source"}, nil)
	descFailures = prometheus.NewDesc("turku_storage_source_consecutive_failures",
		"Backup attempts of the source that failed since its last success (kept across restarts).",
		[]string{"machine", "unit", "source"}, nil)
	descMachineAssigned = prometheus.NewDesc("turku_storage_machine_assigned_timestamp_seconds",
		"When the key refresh first listed the machine as assigned to this unit.",
		[]string{"machine", "unit"}, nil)
	descMachineSuccess = prometheus.NewDesc("turku_storage_machine_last_success_timestamp_seconds",
		"When the newest successful backup of any of the machine's sources finished; absent if none ever did.",
		[]string{"machine", "unit"}, nil)
	descSessions = prometheus.NewDesc("turku_storage_sessions",
		"Agent sessions open now, by mode (checkin, restore).", []string{"mode"}, nil)
	descRunning = prometheus.NewDesc("turku_storage_backups_running",
		"Source backups whose rsync runs now.", nil, nil)
	descWaiting = prometheus.NewDesc("turku_storage_backups_waiting",
		"Source backups waiting for a max_concurrent_backups slot.", nil, nil)
	descAuthFailures = prometheus.NewDesc("turku_storage_ssh_auth_failures_total",
		"Failed SSH authentication attempts.", nil, nil)
	descDropped = prometheus.NewDesc("turku_storage_ssh_connections_dropped_total",
		"SSH connections dropped by the server, by reason.", []string{"reason"}, nil)
	descVolumeFree = prometheus.NewDesc("turku_storage_volume_free_bytes",
		"Bytes available to unprivileged users on the volume's filesystem.", []string{"volume"}, nil)
	descVolumeSize = prometheus.NewDesc("turku_storage_volume_size_bytes",
		"Size of the volume's filesystem.", []string{"volume"}, nil)
	descVolumeMax = prometheus.NewDesc("turku_storage_volume_max_usage_ratio",
		"The disk guard: fill ratio above which no backup starts on the volume (max_usage_pct/100).",
		[]string{"volume"}, nil)
	descVolumeUsed = prometheus.NewDesc("turku_storage_volume_used_bytes",
		"Bytes used on the volume's filesystem, as df counts them (blocks reserved for root are neither used nor free).",
		[]string{"volume"}, nil)
	descVolumeWritable = prometheus.NewDesc("turku_storage_volume_writable",
		"1 if the volume is there, mounted and writable (the volume check), else 0: missing, not mounted or read-only.",
		[]string{"volume"}, nil)
	descVolumeInodes = prometheus.NewDesc("turku_storage_volume_inodes_total",
		"Inodes of the volume's filesystem (absent where it does not count them).", []string{"volume"}, nil)
	descVolumeInodesFree = prometheus.NewDesc("turku_storage_volume_inodes_free",
		"Free inodes on the volume's filesystem.", []string{"volume"}, nil)
	descVolumeMaxInodes = prometheus.NewDesc("turku_storage_volume_max_inode_usage_ratio",
		"The disk guard for inodes: share of inodes used above which no backup starts on the volume (max_inode_usage_pct/100).",
		[]string{"volume"}, nil)
	descMachines = prometheus.NewDesc("turku_storage_machines",
		"Machines whose keys are loaded.", nil, nil)
	descKeyRefresh = prometheus.NewDesc("turku_storage_key_refresh_last_success_timestamp_seconds",
		"When the machine keys were last refreshed from the API (0: never since start).", nil, nil)
	descSpooled = prometheus.NewDesc("turku_storage_reports_spooled",
		"Source reports waiting in VAR_DIR/reports for the API.", nil, nil)
	descSpooledBytes = prometheus.NewDesc("turku_storage_reports_spooled_bytes",
		"Bytes of the source reports waiting in VAR_DIR/reports.", nil, nil)
	descSpoolMaxReports = prometheus.NewDesc("turku_storage_report_spool_max_reports",
		"The report spool's cap in reports (report_spool_max_count); beyond it the oldest are dropped.", nil, nil)
	descSpoolMaxBytes = prometheus.NewDesc("turku_storage_report_spool_max_bytes",
		"The report spool's cap in bytes (report_spool_max_bytes); beyond it the oldest are dropped.", nil, nil)
	descSpoolDropped = prometheus.NewDesc("turku_storage_reports_dropped_total",
		"Source reports dropped from the full spool, undelivered, since start.", nil, nil)
	// As prometheus and blackbox_exporter name theirs.
	descReloadOK = prometheus.NewDesc("turku_storage_config_last_reload_successful",
		"Whether the last configuration load, at start or on SIGHUP, succeeded (1) or was refused (0).", nil, nil)
	descReloadTime = prometheus.NewDesc("turku_storage_config_last_reload_success_timestamp_seconds",
		"When the configuration was last loaded successfully, at start or on SIGHUP (0: never).", nil, nil)
)

// Collector returns a prometheus.Collector that reads s at every scrape.
func (s *State) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *State }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBackups, descDuration, descReceived, descLastSuccess, descLastAttempt,
		descAssigned, descFailures, descMachineAssigned, descMachineSuccess,
		descSessions, descRunning, descWaiting, descAuthFailures, descDropped,
		descVolumeFree, descVolumeSize, descVolumeMax, descVolumeUsed, descVolumeWritable, descVolumeInodes,
		descVolumeInodesFree, descVolumeMaxInodes, descMachines, descKeyRefresh, descSpooled,
		descSpooledBytes, descSpoolMaxReports, descSpoolMaxBytes, descSpoolDropped,
		descReloadOK, descReloadTime,
	} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(descReceived, float64(s.received.Load()))
	counter(descAuthFailures, float64(s.authFailures.Load()))
	gauge(descMachines, float64(s.machines.Load()))
	refresh := 0.0
	if ns := s.keyRefresh.Load(); ns != 0 {
		refresh = float64(ns) / 1e9
	}
	gauge(descKeyRefresh, refresh)
	reloadOK, reloaded := 0.0, 0.0
	if s.configOK.Load() {
		reloadOK = 1
	}
	if ns := s.configLoaded.Load(); ns != 0 {
		reloaded = float64(ns) / 1e9
	}
	gauge(descReloadOK, reloadOK)
	gauge(descReloadTime, reloaded)
	if s.opts.SpooledReports != nil {
		gauge(descSpooled, float64(s.opts.SpooledReports()))
	} else {
		gauge(descSpooled, 0)
	}
	if s.opts.ReportSpool != nil {
		u := s.opts.ReportSpool()
		gauge(descSpooledBytes, float64(u.Bytes))
		gauge(descSpoolMaxReports, float64(u.MaxReports))
		gauge(descSpoolMaxBytes, float64(u.MaxBytes))
		counter(descSpoolDropped, float64(u.Dropped))
	}
	if s.opts.Volumes != nil {
		for _, v := range s.opts.Volumes() {
			gauge(descVolumeMax, float64(v.MaxUsagePct)/100, v.Name)
			gauge(descVolumeMaxInodes, float64(v.MaxInodeUsagePct)/100, v.Name)
			writable := 0.0
			if v.Writable() {
				writable = 1
			}
			gauge(descVolumeWritable, writable, v.Name)
			if v.Err != "" {
				continue
			}
			gauge(descVolumeFree, float64(v.FreeBytes), v.Name)
			gauge(descVolumeSize, float64(v.SizeBytes), v.Name)
			gauge(descVolumeUsed, float64(v.UsedBytes), v.Name)
			if v.Inodes > 0 {
				gauge(descVolumeInodes, float64(v.Inodes), v.Name)
				gauge(descVolumeInodesFree, float64(v.InodesFree), v.Name)
			}
		}
	}

	// Copy under the lock, build metrics outside it: a scrape of 30,000
	// sources must not hold up the backups reporting into s.
	type row struct {
		machine, unit, source      string
		success, attempt, assigned float64
		failures                   int
	}
	type machineRow struct {
		unit              string
		assigned, success float64
	}
	s.mu.Lock()
	results := map[string]int64{}
	for k, v := range s.results {
		results[k] = v
	}
	dropped := map[string]int64{}
	for k, v := range s.dropped {
		dropped[k] = v
	}
	hist := histogram{counts: append([]uint64(nil), s.hist.counts...), sum: s.hist.sum, count: s.hist.count}
	modes := map[string]int{ModeCheckin: 0, ModeRestore: 0}
	for se := range s.sessions {
		modes[se.mode]++
	}
	var running, waiting int
	for _, b := range s.backups {
		switch b.phase {
		case PhaseRunning:
			running++
		case PhaseWaiting:
			waiting++
		}
	}
	// Once the key refresh said which machines are assigned here, the
	// sources of the others (departed machines) are no longer exported.
	rows := make([]row, 0, len(s.sources))
	machines := make(map[string]*machineRow, len(s.assigned))
	for m, a := range s.assigned {
		machines[m] = &machineRow{unit: a.Unit, assigned: unixSeconds(a.Since)}
	}
	for k, v := range s.sources {
		mr := machines[k.machine]
		if s.assigned != nil && mr == nil {
			continue
		}
		r := row{k.machine, v.unit, k.source, unixSeconds(v.lastSuccess), unixSeconds(v.lastAttempt), unixSeconds(v.firstSeen), v.failures}
		if mr != nil {
			if r.unit == "" {
				r.unit = mr.unit
			}
			mr.success = max(mr.success, r.success)
		}
		rows = append(rows, r)
	}
	s.mu.Unlock()

	for r, v := range results {
		counter(descBackups, float64(v), r)
	}
	for r, v := range dropped {
		counter(descDropped, float64(v), r)
	}
	buckets := make(map[float64]uint64, len(DurationBuckets))
	var cum uint64
	for i, le := range DurationBuckets {
		if i < len(hist.counts) {
			cum += hist.counts[i]
		}
		buckets[le] = cum
	}
	ch <- prometheus.MustNewConstHistogram(descDuration, hist.count, hist.sum, buckets)
	for m, n := range modes {
		gauge(descSessions, float64(n), m)
	}
	gauge(descRunning, float64(running))
	gauge(descWaiting, float64(waiting))
	for _, r := range rows {
		if r.success > 0 {
			gauge(descLastSuccess, r.success, r.machine, r.unit, r.source)
		}
		if r.attempt > 0 {
			gauge(descLastAttempt, r.attempt, r.machine, r.unit, r.source)
		}
		if r.assigned > 0 {
			gauge(descAssigned, r.assigned, r.machine, r.unit, r.source)
		}
		gauge(descFailures, float64(r.failures), r.machine, r.unit, r.source)
	}
	for m, r := range machines {
		gauge(descMachineAssigned, r.assigned, m, r.unit)
		if r.success > 0 {
			gauge(descMachineSuccess, r.success, m, r.unit)
		}
	}
}
