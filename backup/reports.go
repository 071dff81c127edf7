package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// Delivery of storage_ping_source_update (docs/protocol.md). turku-api
// adds a BackupLog row for every report it processes, and nothing lets us
// ask whether it already has one, so a report must be sent again only when
// the last copy certainly did not arrive. The rules:
//
//   - Every report is spooled (fsync'd) before it is sent, and the agent's
//     session goes on without waiting for the API: a crash or a hung API
//     loses nothing and holds no agent.
//   - A copy is sent by one sender at a time: the background delivery
//     that follows the backup, or ResendReports, never both.
//   - Sent again at once (after a short pause) is only what never reached
//     the API (apiclient.ErrNotSent: connection refused and the like) or
//     what it answered with an error (HTTP 5xx, 403).
//   - A copy that was sent and not answered is waited for, past
//     api_timeout, for up to replyWait: a hung API that wakes up and
//     processes it is then seen to have done so. If no answer comes, the
//     report stays spooled and is resent later, once, by ResendReports
//     (after the next successful API call).
//
// What remains at-least-once: a copy that reached the API but whose
// answer was lost (connection cut, no answer within replyWait, the daemon
// stopped while waiting) is sent once more, and so is one whose spool file
// a crash kept between the API's answer and the file's removal (fsync'd).

// defaultRetryDelays are the pauses between attempts to deliver a report
// that never arrived or was answered with an error, before it is left to
// ResendReports: enough for a restarting API.
var defaultRetryDelays = []time.Duration{time.Second, 4 * time.Second}

// defaultReplyWait bounds how long one copy of a report waits for the
// API's answer.
const defaultReplyWait = 10 * time.Minute

// spooledReport is one file in VAR_DIR/reports.
type spooledReport struct {
	Machine string                 `json:"machine"`
	Source  string                 `json:"source"`
	Report  apiclient.SourceReport `json:"report"`
	Queued  string                 `json:"queued"`
}

// ReportsOptions configure a Reports.
type ReportsOptions struct {
	// VarDir holds the spool, VarDir/reports.
	VarDir string
	API    API
	// Logger receives the queue's log; nil discards it.
	Logger *slog.Logger
	// Now names spool files; nil means time.Now.
	Now func() time.Time
	// SlowAfter is when a report still unanswered is logged (api_timeout);
	// 0 means 30 s.
	SlowAfter time.Duration
	// MaxCount and MaxBytes cap the spool (report_spool_max_count,
	// report_spool_max_bytes); 0 means DefaultSpoolMaxCount and
	// DefaultSpoolMaxBytes. See spoolcap.go.
	MaxCount int
	MaxBytes int64
	// SourceRemoved, when set, is told of a source the API answered a
	// report of with "Source not found": it no longer has it.
	SourceRemoved func(machine, source string)
}

// Reports is the report queue: the spool under VAR_DIR/reports and the
// goroutines delivering it. One Reports serves every Engine of a daemon
// (engines are rebuilt on a configuration reload), so that a spooled report
// is in the hands of one sender at a time.
type Reports struct {
	dir       string
	api       API
	log       *slog.Logger
	now       func() time.Time
	slowAfter time.Duration
	maxCount  int
	maxBytes  int64
	removed   func(machine, source string)
	dropped   atomic.Int64 // reports dropped for the cap, since start

	// Seams for tests, set by NewReports.
	retryDelays []time.Duration
	replyWait   time.Duration

	// ctx is the parent of background deliveries; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background deliveries

	mu       sync.Mutex      // guards the fields below
	claimed  map[string]bool // spool files a sender holds
	running  int             // background deliveries
	idle     chan struct{}   // closed when running drops to 0
	resendMu sync.Mutex      // serialises ResendReports
	capMu    sync.Mutex      // serialises enforceCap
}

// NewReports returns the queue on opts.VarDir/reports. It creates nothing
// until a report is spooled.
func NewReports(opts ReportsOptions) *Reports {
	q := &Reports{
		dir:         filepath.Join(opts.VarDir, reportsDirName),
		api:         opts.API,
		log:         opts.Logger,
		now:         opts.Now,
		slowAfter:   opts.SlowAfter,
		maxCount:    opts.MaxCount,
		maxBytes:    opts.MaxBytes,
		removed:     opts.SourceRemoved,
		retryDelays: defaultRetryDelays,
		replyWait:   defaultReplyWait,
		claimed:     map[string]bool{},
		idle:        make(chan struct{}),
	}
	close(q.idle)
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.slowAfter <= 0 {
		q.slowAfter = 30 * time.Second
	}
	if q.maxCount <= 0 {
		q.maxCount = DefaultSpoolMaxCount
	}
	if q.maxBytes <= 0 {
		q.maxBytes = DefaultSpoolMaxBytes
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	return q
}

// Send spools a source report and delivers it in the background; the
// caller does not wait for the API. If the spool cannot be written, the
// report is still sent, from memory.
func (q *Reports) Send(uuid, source string, r apiclient.SourceReport) {
	log := q.log.With("machine", uuid, "source", source)
	// Claimed before the file exists, so ResendReports never finds it
	// unclaimed.
	path := q.newPath()
	q.claim(path)
	if err := q.spool(path, uuid, source, r); err != nil {
		log.Error("report not spooled; sending it without a copy on disk", "err", err)
		q.unclaim(path)
		path = ""
	} else {
		q.enforceCap()
	}
	q.mu.Lock()
	if q.ctx.Err() != nil {
		q.mu.Unlock()
		q.unclaim(path)
		if path == "" {
			log.Error("report lost: queue closed and spool not writable", "report", r)
		} else {
			log.Warn("report queue closed; report left spooled", "file", path)
		}
		return
	}
	q.running++
	if q.running == 1 {
		q.idle = make(chan struct{})
	}
	q.wg.Add(1)
	q.mu.Unlock()
	go func() {
		defer q.wg.Done()
		defer q.doneRunning()
		defer q.unclaim(path)
		q.deliver(q.ctx, log, path, uuid, source, r)
	}()
}

func (q *Reports) doneRunning() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running--
	if q.running == 0 {
		close(q.idle)
	}
}

// Wait waits until no background delivery runs, or ctx ends. A one-shot
// command calls it before it exits.
func (q *Reports) Wait(ctx context.Context) error {
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Close stops the background deliveries and waits for them. Their reports
// stay spooled, to be resent by the next ResendReports.
func (q *Reports) Close() {
	q.mu.Lock()
	q.cancel()
	q.mu.Unlock()
	q.wg.Wait()
}

// claim marks path as held by a sender; it reports false if another holds
// it.
func (q *Reports) claim(path string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.claimed[path] {
		return false
	}
	q.claimed[path] = true
	return true
}

func (q *Reports) unclaim(path string) {
	if path == "" {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.claimed, path)
}

// outcome is what one copy of a report came to.
type outcome int

const (
	delivered outcome = iota
	refused           // permanently: the machine or source is gone, or the request is malformed
	answered          // the API answered with an error: it did not take the report
	notSent           // never reached the API
	unknown           // sent, not answered: the API may have it
)

// classify maps a SourceUpdate error to its outcome.
func classify(err error) outcome {
	var ae *apiclient.Error
	switch {
	case err == nil:
		return delivered
	case errors.Is(err, apiclient.ErrNotFound) || errors.Is(err, apiclient.ErrBadRequest):
		return refused
	case errors.Is(err, apiclient.ErrNotSent):
		return notSent
	case errors.As(err, &ae):
		return answered
	}
	return unknown
}

// sendOne sends one copy and waits for the answer up to replyWait.
func (q *Reports) sendOne(ctx context.Context, log *slog.Logger, uuid, source string, r apiclient.SourceReport) error {
	ctx, cancel := context.WithTimeout(ctx, q.replyWait)
	defer cancel()
	slow := time.AfterFunc(q.slowAfter, func() {
		log.Warn("report not answered yet; waiting for the API's reply rather than sending it again", "after", q.slowAfter)
	})
	defer slow.Stop()
	return q.api.SourceUpdate(ctx, uuid, source, r)
}

// deliver sends a spooled report (path "" when it could not be spooled),
// retrying only what certainly did not arrive, and removes the spool file
// once the API took or permanently refused it.
func (q *Reports) deliver(ctx context.Context, log *slog.Logger, path, uuid, source string, r apiclient.SourceReport) {
	for attempt := 0; ; attempt++ {
		err := q.sendOne(ctx, log, uuid, source, r)
		switch classify(err) {
		case delivered:
			log.Info("report delivered")
			q.remove(log, path)
			return
		case refused:
			log.Error("report refused, dropped", "err", err)
			q.remove(log, path)
			q.sourceGone(uuid, source, err)
			return
		case unknown:
			log.Warn("report may have reached the API; kept to resend once later", "err", err, "file", path)
			return
		}
		if attempt >= len(q.retryDelays) || !sleepCtx(ctx, q.retryDelays[attempt]) {
			log.Warn("report not delivered; kept to resend after the next successful API call", "err", err, "file", path)
			return
		}
		log.Warn("report not delivered, retrying", "err", err, "attempt", attempt+1)
	}
}

func (q *Reports) remove(log *slog.Logger, path string) {
	if path == "" {
		return
	}
	// Left behind (or back after a crash), it would be sent again.
	err := os.Remove(path)
	if err == nil {
		err = atomicfile.SyncDir(q.dir)
	}
	if err != nil {
		log.Error("delivered report not removed from the spool; it may be sent again", "file", path, "err", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newPath names a new spool file. Names sort in queue order.
func (q *Reports) newPath() string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return filepath.Join(q.dir, fmt.Sprintf("%020d-%s.json", q.now().UnixNano(), hex.EncodeToString(rnd[:])))
}

// spool writes the report atomically (fsync'd) to path.
func (q *Reports) spool(path, uuid, source string, r apiclient.SourceReport) error {
	if err := os.MkdirAll(q.dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(spooledReport{Machine: uuid, Source: source, Report: r, Queued: isoTime(q.now())}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// ResendReports delivers the spooled reports no other sender holds, oldest
// first, deleting each one the API accepts or permanently refuses. When
// the API cannot be reached, refuses this storage unit's auth or leaves a
// report unanswered, it stops, since nothing else would go through. When
// the API answers but fails on one report (an HTTP 5xx that report
// triggers), that report stays queued and so do the later ones of the same
// machine and source, to keep their order; the others are still delivered,
// so one report the API cannot take never holds up the whole queue. It
// returns how many remain as an error. Unreadable files are renamed to
// *.bad and skipped.
func (e *Engine) ResendReports(ctx context.Context) error { return e.reports.Resend(ctx) }

// Resend is ResendReports.
func (q *Reports) Resend(ctx context.Context) error {
	q.resendMu.Lock()
	defer q.resendMu.Unlock()
	entries, err := os.ReadDir(q.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resend reports: %w", err)
	}
	var names []string
	for _, ent := range entries {
		if queued(ent) {
			names = append(names, ent.Name())
		}
	}
	slices.Sort(names)
	// held are the machine/source pairs with an older report still queued
	// or in another sender's hands.
	held := map[[2]string]bool{}
	var kept int
	var keptErr error
	for i, name := range names {
		path := filepath.Join(q.dir, name)
		var sr spooledReport
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // delivered by its sender since we listed it
		}
		if err == nil {
			err = json.Unmarshal(data, &sr)
		}
		if err == nil {
			err = errors.Join(checkComponent("machine UUID", sr.Machine), checkComponent("source name", sr.Source))
		}
		if err != nil {
			q.log.Error("spooled report unreadable", "file", path, "err", err)
			_ = os.Rename(path, path+".bad")
			continue
		}
		log := q.log.With("machine", sr.Machine, "source", sr.Source)
		key := [2]string{sr.Machine, sr.Source}
		if held[key] {
			kept++
			continue
		}
		if !q.claim(path) {
			// Its first delivery is still waiting for the API's answer.
			held[key] = true
			kept++
			continue
		}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// Delivered by its sender between our reading and claiming it
			// (a sender removes the file before it lets go).
			q.unclaim(path)
			continue
		}
		err = q.sendOne(ctx, log, sr.Machine, sr.Source, sr.Report)
		q.unclaim(path)
		// Logged once the file is gone, so that whoever reads the log
		// finds the spool as it says.
		var logDone func()
		switch classify(err) {
		case delivered:
			logDone = func() { log.Info("spooled report delivered", "queued", sr.Queued) }
		case refused:
			logDone = func() {
				log.Error("spooled report refused, dropped", "err", err, "queued", sr.Queued)
				q.sourceGone(sr.Machine, sr.Source, err)
			}
		case answered:
			if !errors.Is(err, apiclient.ErrBadAuth) && ctx.Err() == nil {
				log.Warn("spooled report not accepted, kept", "err", err, "queued", sr.Queued)
				held[key] = true
				kept++
				if keptErr == nil {
					keptErr = err
				}
				continue
			}
			fallthrough
		default:
			return fmt.Errorf("resend reports: %d still queued: %w", kept+len(names)-i, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("resend reports: %w", err)
		}
		if err := atomicfile.SyncDir(q.dir); err != nil {
			return fmt.Errorf("resend reports: %w", err)
		}
		logDone()
	}
	switch {
	case kept > 0 && keptErr != nil:
		return fmt.Errorf("resend reports: %d still queued: %w", kept, keptErr)
	case kept > 0:
		// Only reports behind one whose first delivery still waits for
		// the API's answer: no error of the API's to wrap.
		return fmt.Errorf("resend reports: %d still queued behind reports awaiting the API's answer", kept)
	}
	return nil
}

// sourceGone tells SourceRemoved of a source the API said it no longer
// has (turku-api: 404 "Source not found"); "Machine not found" is the
// key refresh's to notice.
func (q *Reports) sourceGone(machine, source string, err error) {
	var ae *apiclient.Error
	if q.removed != nil && errors.Is(err, apiclient.ErrNotFound) && errors.As(err, &ae) && strings.Contains(ae.Body, "Source not found") {
		q.removed(machine, source)
	}
}
