package restore

import (
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"

	"github.com/turku-backup/turku-storage/rsync"
)

// reporter shows progress: a bar on a terminal, else a line every 10 %.
type reporter struct {
	w       io.Writer
	bar     *progressbar.ProgressBar
	lastPct int
	last    rsync.Progress
	seen    bool
}

func newReporter(w io.Writer, terminal bool) *reporter {
	r := &reporter{w: w, lastPct: -1}
	if terminal {
		r.bar = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("restore"),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
		)
	}
	return r
}

func (r *reporter) update(p rsync.Progress) {
	r.last, r.seen = p, true
	if r.bar != nil {
		r.bar.Describe(fmt.Sprintf("%s at %s", humanize.IBytes(uint64(p.Bytes)), p.Rate))
		r.bar.Set(p.Pct)
		return
	}
	if p.Pct/10 > r.lastPct/10 || r.lastPct < 0 {
		r.lastPct = p.Pct
		fmt.Fprintf(r.w, "progress: %d%% %d bytes %s\n", p.Pct, p.Bytes, p.Rate)
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish()
		fmt.Fprintln(r.w)
	}
}
