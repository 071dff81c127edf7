package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/turku-backup/turku-storage/apiclient"
)

// defaultRetryDelays are the pauses between attempts to deliver a report
// before it is spooled: three tries within a few seconds, enough for a
// restarting API, short enough not to hold the agent's session.
var defaultRetryDelays = []time.Duration{time.Second, 4 * time.Second}

// reportTimeout bounds one delivery attempt made after the session's
// context ended, so a cancelled backup can still report its failure.
const reportTimeout = 30 * time.Second

// spooledReport is one file in VAR_DIR/reports.
type spooledReport struct {
	Machine string                 `json:"machine"`
	Source  string                 `json:"source"`
	Report  apiclient.SourceReport `json:"report"`
	Queued  string                 `json:"queued"`
}

func (e *Engine) reportsDir() string { return filepath.Join(e.varDir, "reports") }

// permanentReportError reports whether the API refused the report in a way
// that retrying cannot fix: the machine or source is gone, or the request
// is malformed. Bad auth may be a secret being rotated; it is retried.
func permanentReportError(err error) bool {
	return errors.Is(err, apiclient.ErrNotFound) || errors.Is(err, apiclient.ErrBadRequest)
}

// deliver sends a source report, retrying briefly, and spools it if the
// API stays unreachable. It works after ctx has ended (one attempt, then
// the spool) so that an interrupted backup is still reported. It returns
// an error only if the report is lost.
func (e *Engine) deliver(ctx context.Context, uuid, source string, r apiclient.SourceReport) error {
	log := e.log.With("machine", uuid, "source", source)
	send := context.WithoutCancel(ctx)
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(send, reportTimeout)
		err = e.api.SourceUpdate(actx, uuid, source, r)
		cancel()
		if err == nil {
			return nil
		}
		if permanentReportError(err) {
			log.Error("report refused", "err", err)
			return fmt.Errorf("report for %s refused: %w", source, err)
		}
		if attempt >= len(e.retryDelays) || ctx.Err() != nil {
			break
		}
		log.Warn("report failed, retrying", "err", err, "attempt", attempt+1)
		if !sleepCtx(ctx, e.retryDelays[attempt]) {
			break
		}
	}
	path, serr := e.spool(uuid, source, r)
	if serr != nil {
		log.Error("report lost", "err", errors.Join(err, serr))
		return fmt.Errorf("report for %s lost: %w", source, errors.Join(err, serr))
	}
	log.Warn("report spooled", "err", err, "file", path)
	return nil
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

// spool writes the report atomically to VAR_DIR/reports. File names sort
// in queue order.
func (e *Engine) spool(uuid, source string, r apiclient.SourceReport) (string, error) {
	dir := e.reportsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(spooledReport{Machine: uuid, Source: source, Report: r, Queued: isoTime(e.now())}, "", "  ")
	if err != nil {
		return "", err
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(dir, fmt.Sprintf("%020d-%s.json", e.now().UnixNano(), hex.EncodeToString(rnd[:])))
	return path, writeFileAtomic(path, data, 0o600)
}

// ResendReports delivers spooled reports, oldest first, deleting each one
// the API accepts or permanently refuses. When the API cannot be reached
// (or refuses this storage unit's auth) it stops, since nothing else would
// go through. When the API answers but fails on one report (an HTTP 5xx
// that report triggers), that report stays queued and so do the later ones
// of the same machine and source, to keep their order; the others are
// still delivered, so one report the API cannot take never holds up the
// whole queue. It returns how many remain as an error. Unreadable files
// are renamed to *.bad and skipped.
func (e *Engine) ResendReports(ctx context.Context) error {
	e.resendMu.Lock()
	defer e.resendMu.Unlock()
	entries, err := os.ReadDir(e.reportsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resend reports: %w", err)
	}
	var names []string
	for _, ent := range entries {
		if ent.Type().IsRegular() && strings.HasSuffix(ent.Name(), ".json") && !strings.HasPrefix(ent.Name(), ".") {
			names = append(names, ent.Name())
		}
	}
	slices.Sort(names)
	// held are the machine/source pairs with an older report still queued.
	held := map[[2]string]bool{}
	var kept int
	var keptErr error
	for i, name := range names {
		path := filepath.Join(e.reportsDir(), name)
		var sr spooledReport
		data, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(data, &sr)
		}
		if err == nil {
			err = errors.Join(checkComponent("machine UUID", sr.Machine), checkComponent("source name", sr.Source))
		}
		if err != nil {
			e.log.Error("spooled report unreadable", "file", path, "err", err)
			_ = os.Rename(path, path+".bad")
			continue
		}
		log := e.log.With("machine", sr.Machine, "source", sr.Source)
		key := [2]string{sr.Machine, sr.Source}
		if held[key] {
			kept++
			continue
		}
		err = e.api.SourceUpdate(ctx, sr.Machine, sr.Source, sr.Report)
		var answered *apiclient.Error
		switch {
		case err == nil:
			log.Info("spooled report delivered", "queued", sr.Queued)
		case permanentReportError(err):
			log.Error("spooled report refused, dropped", "err", err, "queued", sr.Queued)
		case errors.As(err, &answered) && !errors.Is(err, apiclient.ErrBadAuth) && ctx.Err() == nil:
			log.Warn("spooled report not accepted, kept", "err", err, "queued", sr.Queued)
			held[key] = true
			kept++
			if keptErr == nil {
				keptErr = err
			}
			continue
		default:
			return fmt.Errorf("resend reports: %d still queued: %w", kept+len(names)-i, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("resend reports: %w", err)
		}
	}
	if kept > 0 {
		return fmt.Errorf("resend reports: %d still queued: %w", kept, keptErr)
	}
	return nil
}
