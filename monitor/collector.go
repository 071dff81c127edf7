package monitor

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Help of the families Handler also renders from its cache.
const (
	helpLastSuccess     = "When the source's last successful backup finished (from the newest snapshot on disk at start)."
	helpLastAttempt     = "When the source's last backup attempt ended, successful or not."
	helpAssigned        = "When this unit first saw the source (its first attempt, or its newest snapshot at start): with no last success, the source is late from then."
	helpFailures        = "Backup attempts of the source that failed since its last success (kept across restarts)."
	helpMachineAssigned = "When the key refresh first listed the machine as assigned to this unit."
	helpMachineSuccess  = "When the newest successful backup of any of the machine's sources finished; absent if none ever did."
)

// Metric names (docs/operations.md, "Monitoring"). Dashboards and the
// alert rules in examples/ rely on them: do not rename.
var (
	descBackups = newDesc("turku_storage_backups_total",
		"Source backups finished, by result (success, failure).", "result")
	descDuration = newDesc("turku_storage_backup_duration_seconds",
		"Duration of source backups, from begin to report.")
	descReceived = newDesc("turku_storage_backup_received_bytes_total",
		"Bytes received from agents through checkin tunnels.")
	descLastSuccess = newDesc("turku_storage_source_last_success_timestamp_seconds",
		helpLastSuccess, "machine", "unit", "source")
	descLastAttempt = newDesc("turku_storage_source_last_attempt_timestamp_seconds",
		helpLastAttempt, "machine", "unit", "source")
	descAssigned = newDesc("turku_storage_source_assigned_timestamp_seconds",
		helpAssigned, "machine", "unit", "source")
	descFailures = newDesc("turku_storage_source_consecutive_failures",
		helpFailures, "machine", "unit", "source")
	descMachineAssigned = newDesc("turku_storage_machine_assigned_timestamp_seconds",
		helpMachineAssigned, "machine", "unit")
	descMachineSuccess = newDesc("turku_storage_machine_last_success_timestamp_seconds",
		helpMachineSuccess, "machine", "unit")
	descSessions = newDesc("turku_storage_sessions",
		"Agent sessions open now, by mode (checkin, restore).", "mode")
	descRunning = newDesc("turku_storage_backups_running",
		"Source backups whose rsync runs now.")
	descWaiting = newDesc("turku_storage_backups_waiting",
		"Source backups waiting for a max_concurrent_backups slot.")
	descAuthFailures = newDesc("turku_storage_ssh_auth_failures_total",
		"Failed SSH authentication attempts.")
	descDropped = newDesc("turku_storage_ssh_connections_dropped_total",
		"SSH connections dropped by the server, by reason.", "reason")
	descVolumeFree = newDesc("turku_storage_volume_free_bytes",
		"Bytes available to unprivileged users on the volume's filesystem.", "volume")
	descVolumeSize = newDesc("turku_storage_volume_size_bytes",
		"Size of the volume's filesystem.", "volume")
	descVolumeMax = newDesc("turku_storage_volume_max_usage_ratio",
		"The disk guard: fill ratio above which no backup starts on the volume (max_usage_pct/100).", "volume")
	descVolumeUsed = newDesc("turku_storage_volume_used_bytes",
		"Bytes used on the volume's filesystem, as df counts them (blocks reserved for root are neither used nor free).", "volume")
	descVolumeWritable = newDesc("turku_storage_volume_writable",
		"1 if the volume is there, mounted and writable (the volume check), else 0: missing, not mounted or read-only.", "volume")
	descVolumeInodes = newDesc("turku_storage_volume_inodes_total",
		"Inodes of the volume's filesystem (absent where it does not count them).", "volume")
	descVolumeInodesFree = newDesc("turku_storage_volume_inodes_free",
		"Free inodes on the volume's filesystem.", "volume")
	descVolumeMaxInodes = newDesc("turku_storage_volume_max_inode_usage_ratio",
		"The disk guard for inodes: share of inodes used above which no backup starts on the volume (max_inode_usage_pct/100).", "volume")
	descMachines = newDesc("turku_storage_machines",
		"Machines whose keys are loaded.")
	descKeyRefresh = newDesc("turku_storage_key_refresh_last_success_timestamp_seconds",
		"When the machine keys were last refreshed from the API (0: never since start).")
	descSpooled = newDesc("turku_storage_reports_spooled",
		"Source reports waiting in VAR_DIR/reports for the API.")
	descSpooledBytes = newDesc("turku_storage_reports_spooled_bytes",
		"Bytes of the source reports waiting in VAR_DIR/reports.")
	descSpoolMaxReports = newDesc("turku_storage_report_spool_max_reports",
		"The report spool's cap in reports (report_spool_max_count); beyond it the oldest are dropped.")
	descSpoolMaxBytes = newDesc("turku_storage_report_spool_max_bytes",
		"The report spool's cap in bytes (report_spool_max_bytes); beyond it the oldest are dropped.")
	descSpoolDropped = newDesc("turku_storage_reports_dropped_total",
		"Source reports dropped from the full spool, undelivered, since start.")
	// As prometheus and blackbox_exporter name theirs.
	descReloadOK = newDesc("turku_storage_config_last_reload_successful",
		"Whether the last configuration load, at start or on SIGHUP, succeeded (1) or was refused (0).")
	descReloadTime = newDesc("turku_storage_config_last_reload_success_timestamp_seconds",
		"When the configuration was last loaded successfully, at start or on SIGHUP (0: never).")
)

// newDesc describes a family without constant labels, its variable
// labels named in order.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// Collector returns a prometheus.Collector that reads s at every scrape,
// every family included.
func (s *State) Collector() prometheus.Collector { return collector{s: s} }

// LiveCollector returns a prometheus.Collector of the figures that move
// all the time (counters, sessions, running and waiting backups, volumes,
// the key refresh): Collector without the per-source and per-machine
// families, which Handler serves from its cache.
func (s *State) LiveCollector() prometheus.Collector { return collector{s: s, live: true} }

// collector reads s; live leaves out the families of rowFamilies.
type collector struct {
	s    *State
	live bool
}

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
	switch {
	case s.opts.ReportSpool != nil:
		u := s.opts.ReportSpool()
		gauge(descSpooled, float64(u.Reports))
		gauge(descSpooledBytes, float64(u.Bytes))
		gauge(descSpoolMaxReports, float64(u.MaxReports))
		gauge(descSpoolMaxBytes, float64(u.MaxBytes))
		counter(descSpoolDropped, float64(u.Dropped))
	case s.opts.SpooledReports != nil:
		gauge(descSpooled, float64(s.opts.SpooledReports()))
	default:
		gauge(descSpooled, 0)
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
	if c.live {
		return
	}
	rows, machines := s.rows()
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
	for _, r := range machines {
		gauge(descMachineAssigned, r.assigned, r.machine, r.unit)
		if r.success > 0 {
			gauge(descMachineSuccess, r.success, r.machine, r.unit)
		}
	}
}

// sourceRow is what the per-source families say of one source.
type sourceRow struct {
	machine, unit, source      string
	success, attempt, assigned float64
	failures                   int
}

// machineRow is what the per-machine families say of one machine.
type machineRow struct {
	machine, unit     string
	assigned, success float64
}

// rows copies the per-source and per-machine figures under the lock; the
// metrics are built outside it, so that a scrape of 30,000 sources does
// not hold up the backups reporting into s.
func (s *State) rows() ([]sourceRow, []machineRow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Once the key refresh said which machines are assigned here, the
	// sources of the others (departed machines) are no longer exported.
	rows := make([]sourceRow, 0, len(s.sources))
	machines := make(map[string]*machineRow, len(s.assigned))
	for m, a := range s.assigned {
		machines[m] = &machineRow{machine: m, unit: a.Unit, assigned: unixSeconds(a.Since)}
	}
	for k, v := range s.sources {
		mr := machines[k.machine]
		if s.assigned != nil && mr == nil {
			continue
		}
		r := sourceRow{k.machine, v.unit, k.source, unixSeconds(v.lastSuccess), unixSeconds(v.lastAttempt), unixSeconds(v.firstSeen), v.failures}
		if mr != nil {
			if r.unit == "" {
				r.unit = mr.unit
			}
			mr.success = max(mr.success, r.success)
		}
		rows = append(rows, r)
	}
	out := make([]machineRow, 0, len(machines))
	for _, mr := range machines {
		out = append(out, *mr)
	}
	return rows, out
}

// The per-source and per-machine families change only when a backup
// ends, a source is seeded or the key refresh changes the assigned
// machines, yet they are nearly all of a large unit's scrape: 10,000
// machines × 3 sources are 140,000 series, 8.8 MB of text, which
// client_golang gathers, sorts, checks and encodes anew at every scrape
// (209–268 ms; docs/benchmarks.md, "Metrics" and "(h)"). Handler instead keeps each
// row's lines of text and renders again only the rows whose figures
// changed since the last scrape.

// rowFamily is one of the families Handler renders from its cache.
type rowFamily struct {
	name, help string
}

// rowFamilies, in the order Handler writes them: the four per-source
// families, then the two per-machine ones, with the names and help of
// the descs above (TestHandlerMatchesCollector compares them).
var rowFamilies = []rowFamily{
	{"turku_storage_source_assigned_timestamp_seconds", helpAssigned},
	{"turku_storage_source_consecutive_failures", helpFailures},
	{"turku_storage_source_last_attempt_timestamp_seconds", helpLastAttempt},
	{"turku_storage_source_last_success_timestamp_seconds", helpLastSuccess},
	{"turku_storage_machine_assigned_timestamp_seconds", helpMachineAssigned},
	{"turku_storage_machine_last_success_timestamp_seconds", helpMachineSuccess},
}

// rowCache is Handler's text of the per-source and per-machine rows.
type rowCache struct {
	mu       sync.Mutex // one scrape brings it up to date at a time; guards the rest
	gen      uint64
	sources  map[sourceKey]*cachedSource
	machines map[string]*cachedMachine
	// The rows of each kind in order, cut into blocks.
	sourceSet, machineSet rowSet
	// headers holds each family's HELP and TYPE lines, as text and as a
	// gzip member.
	headers, gzHeaders [][]byte
}

// cachedRow is one row's lines, one per family of its set (empty where
// the row has no sample).
type cachedRow struct {
	sortKey string
	seen    uint64 // the scrape that last found the row
	pos     int    // its place in the set's order
	lines   [][]byte
}

type cachedSource struct {
	row sourceRow
	cachedRow
}

type cachedMachine struct {
	row machineRow
	cachedRow
}

// blockRows is how many rows one block of a family holds: a row that
// changes makes its blocks be joined (and compressed) again, the others
// are written as they are.
const blockRows = 512

// rowSet is the rows of one kind (sources, machines) in order, and for
// each of its families the blocks of their lines.
type rowSet struct {
	families []rowFamily
	order    []*cachedRow
	reorder  bool          // rows came or went: order and blocks are rebuilt
	blocks   [][]*rowBlock // [family][pos/blockRows]
}

// rowBlock is blockRows rows' lines of one family, joined, and as one
// gzip member (RFC 1952 §2.2: a gzip stream may hold several) once a
// scrape asked for gzip.
type rowBlock struct {
	text  []byte
	gz    []byte
	dirty bool
}

// found records that e is still there, with its figures unchanged
// (changed false) or changed.
func (rs *rowSet) found(e *cachedRow, gen uint64, isNew, changed bool) {
	e.seen = gen
	switch {
	case isNew:
		rs.reorder = true
	case changed && !rs.reorder:
		for _, fb := range rs.blocks {
			fb[e.pos/blockRows].dirty = true
		}
	}
}

// rebuild brings order and blocks up to date; all are rows still there.
func (rs *rowSet) rebuild(all func(yield func(*cachedRow) bool)) {
	if rs.reorder {
		rs.order = slices.SortedFunc(all, func(a, b *cachedRow) int { return strings.Compare(a.sortKey, b.sortKey) })
		for i, e := range rs.order {
			e.pos = i
		}
		n := (len(rs.order) + blockRows - 1) / blockRows
		rs.blocks = make([][]*rowBlock, len(rs.families))
		for f := range rs.blocks {
			rs.blocks[f] = make([]*rowBlock, n)
			for i := range n {
				rs.blocks[f][i] = &rowBlock{dirty: true}
			}
		}
		rs.reorder = false
	}
	for f, fb := range rs.blocks {
		for i, b := range fb {
			if !b.dirty {
				continue
			}
			// A new array: a scrape still writing the old one outside
			// the lock keeps it.
			rows := rs.order[i*blockRows : min((i+1)*blockRows, len(rs.order))]
			size := 0
			for _, e := range rows {
				size += len(e.lines[f])
			}
			b.text, b.gz, b.dirty = make([]byte, 0, size), nil, false
			for _, e := range rows {
				b.text = append(b.text, e.lines[f]...)
			}
		}
	}
}

// pieces appends what to write of the set's families: each one's header
// and blocks, as text or as gzip members; a family without a sample is
// left out, as promhttp leaves it out. The slices are never changed
// afterwards, so they may be written after the cache's lock is released.
func (rs *rowSet) pieces(out [][]byte, gz bool, headers [][]byte) [][]byte {
	for f, fb := range rs.blocks {
		header := false
		for _, b := range fb {
			if len(b.text) == 0 {
				continue
			}
			if !header {
				out = append(out, headers[f])
				header = true
			}
			if !gz {
				out = append(out, b.text)
				continue
			}
			if b.gz == nil {
				b.gz = gzipMember(b.text)
			}
			out = append(out, b.gz)
		}
	}
	return out
}

// gzipMember compresses b into one gzip member at gzip's best speed.
func gzipMember(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func newRowCache() *rowCache {
	c := &rowCache{
		sources:    map[sourceKey]*cachedSource{},
		machines:   map[string]*cachedMachine{},
		sourceSet:  rowSet{families: rowFamilies[:4]},
		machineSet: rowSet{families: rowFamilies[4:]},
	}
	for _, f := range rowFamilies {
		h := []byte("# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n# TYPE " + f.name + " gauge\n")
		c.headers = append(c.headers, h)
		c.gzHeaders = append(c.gzHeaders, gzipMember(h))
	}
	return c
}

// Handler serves /metrics: reg (the Go and process collectors and
// LiveCollector) gathered at every scrape, followed by the per-source and
// per-machine families from the cache, in the Prometheus text format
// (version 0.0.4). When the scraper accepts gzip, as Prometheus does, the
// reply is a gzip stream of several members: reg's part compressed at
// each scrape, the rows' blocks compressed once and kept until one of
// their rows changes. Errors gathering reg are passed to errorLog, and
// what was gathered is served, as promhttp.ContinueOnError does.
func (s *State) Handler(reg prometheus.Gatherer, errorLog func(error)) http.Handler {
	c := newRowCache()
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fams, err := reg.Gather()
		if err != nil && errorLog != nil {
			errorLog(err)
		}
		gz := acceptsGzip(r)
		w.Header().Set("Content-Type", string(format))
		if gz {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Add("Vary", "Accept-Encoding")
		}
		bw := bufio.NewWriterSize(w, 64<<10)
		defer bw.Flush()
		var live io.Writer = bw
		var zw *gzip.Writer
		if gz {
			zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
			live = zw
		}
		enc := expfmt.NewEncoder(live, format)
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				if errorLog != nil {
					errorLog(err)
				}
				return
			}
		}
		if zw != nil {
			_ = zw.Close()
		}
		c.write(bw, gz, s)
	})
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip
// (Prometheus sends "gzip").
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// write brings the cache up to date with s and writes the row families.
func (c *rowCache) write(w io.Writer, gz bool, s *State) {
	rows, machines := s.rows()
	c.mu.Lock()
	c.gen++
	for _, r := range rows {
		k := sourceKey{r.machine, r.source}
		e := c.sources[k]
		isNew := e == nil
		if isNew {
			e = &cachedSource{cachedRow: cachedRow{sortKey: r.machine + "\x00" + r.source, lines: make([][]byte, 4)}}
			c.sources[k] = e
		} else if e.row == r {
			c.sourceSet.found(&e.cachedRow, c.gen, false, false)
			continue
		}
		e.row = r
		c.sourceSet.found(&e.cachedRow, c.gen, isNew, true)
		labels := labelText(nil, "machine", r.machine, "source", r.source, "unit", r.unit)
		e.lines[0] = sampleLine(e.lines[0][:0], rowFamilies[0].name, labels, r.assigned, r.assigned > 0)
		e.lines[1] = sampleLine(e.lines[1][:0], rowFamilies[1].name, labels, float64(r.failures), true)
		e.lines[2] = sampleLine(e.lines[2][:0], rowFamilies[2].name, labels, r.attempt, r.attempt > 0)
		e.lines[3] = sampleLine(e.lines[3][:0], rowFamilies[3].name, labels, r.success, r.success > 0)
	}
	for _, r := range machines {
		e := c.machines[r.machine]
		isNew := e == nil
		if isNew {
			e = &cachedMachine{cachedRow: cachedRow{sortKey: r.machine, lines: make([][]byte, 2)}}
			c.machines[r.machine] = e
		} else if e.row == r {
			c.machineSet.found(&e.cachedRow, c.gen, false, false)
			continue
		}
		e.row = r
		c.machineSet.found(&e.cachedRow, c.gen, isNew, true)
		labels := labelText(nil, "machine", r.machine, "unit", r.unit)
		e.lines[0] = sampleLine(e.lines[0][:0], rowFamilies[4].name, labels, r.assigned, true)
		e.lines[1] = sampleLine(e.lines[1][:0], rowFamilies[5].name, labels, r.success, r.success > 0)
	}
	// Rows not found this time are gone (a departed machine).
	for k, e := range c.sources {
		if e.seen != c.gen {
			delete(c.sources, k)
			c.sourceSet.reorder = true
		}
	}
	for k, e := range c.machines {
		if e.seen != c.gen {
			delete(c.machines, k)
			c.machineSet.reorder = true
		}
	}
	c.sourceSet.rebuild(func(yield func(*cachedRow) bool) {
		for _, e := range c.sources {
			if !yield(&e.cachedRow) {
				return
			}
		}
	})
	c.machineSet.rebuild(func(yield func(*cachedRow) bool) {
		for _, e := range c.machines {
			if !yield(&e.cachedRow) {
				return
			}
		}
	})
	headers := c.headers
	if gz {
		headers = c.gzHeaders
	}
	out := c.sourceSet.pieces(nil, gz, headers[:4])
	out = c.machineSet.pieces(out, gz, headers[4:])
	c.mu.Unlock()
	// Written without the lock: a slow scraper holds up no other.
	for _, p := range out {
		_, _ = w.Write(p)
	}
}

// Escapes of the text format (expfmt): HELP escapes backslash and line
// feed; label values also the double quote.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// labelText appends {k1="v1",k2="v2",...} to b.
func labelText(b []byte, kv ...string) []byte {
	b = append(b, '{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, kv[i]...)
		b = append(b, `="`...)
		b = append(b, labelEscaper.Replace(kv[i+1])...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// sampleLine appends "name{labels} value\n" to b when present, formatting
// the value as expfmt does; otherwise it returns b empty.
func sampleLine(b []byte, name string, labels []byte, v float64, present bool) []byte {
	if !present {
		return b[:0]
	}
	b = append(b, name...)
	b = append(b, labels...)
	b = append(b, ' ')
	switch {
	case math.IsInf(v, +1):
		b = append(b, "+Inf"...)
	case math.IsInf(v, -1):
		b = append(b, "-Inf"...)
	case math.IsNaN(v):
		b = append(b, "NaN"...)
	default:
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '\n')
}
