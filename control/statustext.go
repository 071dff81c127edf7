package control

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/monitor"
)

// Show writes the status of the serve on socket as tables on w (builtIn:
// as WriteText); with watch it redraws them in place every every, until
// ctx ends.
func Show(ctx context.Context, socket string, w io.Writer, builtIn, watch bool, every time.Duration) error {
	for {
		st, err := GetStatus(ctx, socket)
		if err != nil {
			return err
		}
		if watch {
			// Home, then clear to the end: redrawn in place.
			fmt.Fprint(w, "\x1b[H\x1b[2J")
		}
		if err := st.WriteText(w, builtIn); err != nil || !watch {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// WriteText writes st as the tables `status` shows a person; builtIn
// says the keys come from the built-in coordinator rather than turku-api.
func (st *Status) WriteText(w io.Writer, builtIn bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	since := func(t time.Time) string { return st.Now.Sub(t).Truncate(time.Second).String() }
	fmt.Fprintf(tw, "storage unit %s: turku-storage %s, up %s; keys: %s", st.Storage, st.Version, since(st.Started), words.Count(st.Keys.Machines, "machine", ""))
	if !st.Keys.Updated.IsZero() {
		fmt.Fprintf(tw, " from %s, %s ago", keysFrom(st.Keys.From, builtIn), since(st.Keys.Updated))
	}
	fmt.Fprintf(tw, "; spooled reports: %d", st.SpooledReports)
	draining := st.Published != nil && !*st.Published
	if draining {
		fmt.Fprint(tw, "; not published (draining): turku-api places no new machine here")
	}
	if n := len(st.Orphans); n > 0 {
		fmt.Fprintf(tw, "; orphaned machines: %d, the oldest for %s (turku-storage orphans)", n, since(st.Orphans[0].Since))
	}
	fmt.Fprint(tw, "\n\n")

	fmt.Fprintf(tw, "BACKUPS RUNNING (%d of %s)\tSOURCE\tELAPSED\tRECEIVED\tRATE\tFILES SENT\n", len(st.Backups), words.Count(st.MaxConcurrentBackups, "slot", ""))
	for _, b := range st.Backups {
		files := "-"
		if b.Files != nil {
			files = fmt.Sprint(*b.Files)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/s\t%s\n", words.Machine(b.Machine, b.Unit), b.Source, since(b.Since),
			humanize.IBytes(uint64(b.Bytes)), humanize.IBytes(uint64(b.BytesPerSecond)), files)
	}
	if len(st.Waiting) > 0 {
		fmt.Fprintf(tw, "\nWAITING FOR A SLOT\tSOURCE\tWAITING\n")
		for _, b := range st.Waiting {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", words.Machine(b.Machine, b.Unit), b.Source, since(b.Since))
		}
	}
	fmt.Fprintf(tw, "\nAGENTS (%d)\tMODE\tREMOTE\tSINCE\tPORT\n", len(st.Agents))
	for _, a := range st.Agents {
		port := fmt.Sprint(a.AgentPort)
		if a.Mode == monitor.ModeRestore {
			port = fmt.Sprintf("restore on 127.0.0.1:%d", a.RestorePort)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", words.Machine(a.Machine, a.Unit), a.Mode, a.Remote, since(a.Since), port)
	}
	if len(st.Failing) > 0 {
		fmt.Fprintf(tw, "\nFAILING (%d)\tSOURCE\tIN A ROW\tSINCE\tLAST SUCCESS\tLAST ERROR\n", len(st.Failing))
		for _, f := range st.Failing {
			last := "never"
			if !f.LastSuccess.IsZero() {
				last = since(f.LastSuccess) + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\t%s\t%s\n", words.Machine(f.Machine, f.Unit), f.Source, f.Failures,
				since(f.FailingSince), last, f.LastError)
		}
	}
	fmt.Fprintf(tw, "\nVOLUMES\tPATH\tSTATE\tSIZE\tFREE\tUSED\tINODES USED\tNEW MACHINES\n")
	for _, v := range st.Volumes {
		state := cmp.Or(v.State, "ok")
		if v.Err != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\terror: %s\n", v.Name, v.Path, state, v.Err)
			continue
		}
		accept := "no"
		switch {
		case draining:
			accept = "no (unit not published)"
		case v.AcceptNew:
			accept = fmt.Sprintf("up to %d%%", v.HighWaterPct)
		}
		inodes := "-"
		if v.Inodes > 0 {
			inodes = fmt.Sprintf("%.1f%%", v.InodeUsedPct)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%s\n", v.Name, v.Path, state, humanize.IBytes(uint64(v.SizeBytes)),
			humanize.IBytes(uint64(v.FreeBytes)), v.UsedPct, inodes, accept)
	}
	return tw.Flush()
}

// keysFrom names where the machine keys came from for a person.
func keysFrom(from string, builtIn bool) string {
	switch {
	case from == "cache":
		return "the key cache"
	case from == "api" && builtIn:
		return "the built-in coordinator"
	case from == "api":
		return "turku-api"
	}
	return from
}
