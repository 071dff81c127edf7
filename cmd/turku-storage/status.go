package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turku-backup/turku-storage/control"
	"github.com/turku-backup/turku-storage/internal/words"
	"github.com/turku-backup/turku-storage/monitor"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, watch bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the running serve is doing now",
		Long: `Asks the running serve, through its control socket (control_socket),
what it is doing: connected agents (machine, unit, remote address, mode,
since when), running backups (source, elapsed time, bytes received through
the tunnel so far and their rate, files transferred so far: new or
changed ones, as rsync names them; unchanged files do not count), backups waiting for
a max_concurrent_backups slot, restore sessions with their ports, the last
key refresh, spooled reports, whether the unit is draining (published:
false in force), the sources whose last attempt failed (with
the failures in a row and the last error) and the volumes with their state
(ok, missing, not mounted, read-only), free space and inodes used.

On a terminal it prints a table, and --watch redraws it in place every
--interval until interrupted. Otherwise, or with --json, it prints one JSON
document.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, err := g.loadWithLog()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			get := func() (*control.Status, error) {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				return control.GetStatus(cctx, cfg.ControlSocket)
			}
			if asJSON || !isTerminal(g.stdout) {
				st, err := get()
				if err != nil {
					return err
				}
				return writeJSON(g, st)
			}
			for {
				st, err := get()
				if err != nil {
					return err
				}
				if watch {
					// Home, then clear to the end: redrawn in place.
					fmt.Fprint(g.stdout, "\x1b[H\x1b[2J")
				}
				if err := printStatus(g.stdout, st, cfg.EmbeddedCoordinator()); err != nil || !watch {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().BoolVar(&watch, "watch", false, "on a terminal, redraw every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch redraws")
	return cmd
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printStatus writes st as the tables a person reads; builtIn says the
// keys come from the built-in coordinator rather than turku-api.
func printStatus(w io.Writer, st *control.Status, builtIn bool) error {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/s\t%s\n", machineLabel(b.Machine, b.Unit), b.Source, since(b.Since),
			humanize.IBytes(uint64(b.Bytes)), humanize.IBytes(uint64(b.BytesPerSecond)), files)
	}
	if len(st.Waiting) > 0 {
		fmt.Fprintf(tw, "\nWAITING FOR A SLOT\tSOURCE\tWAITING\n")
		for _, b := range st.Waiting {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", machineLabel(b.Machine, b.Unit), b.Source, since(b.Since))
		}
	}
	fmt.Fprintf(tw, "\nAGENTS (%d)\tMODE\tREMOTE\tSINCE\tPORT\n", len(st.Agents))
	for _, a := range st.Agents {
		port := fmt.Sprint(a.AgentPort)
		if a.Mode == monitor.ModeRestore {
			port = fmt.Sprintf("restore on 127.0.0.1:%d", a.RestorePort)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", machineLabel(a.Machine, a.Unit), a.Mode, a.Remote, since(a.Since), port)
	}
	if len(st.Failing) > 0 {
		fmt.Fprintf(tw, "\nFAILING (%d)\tSOURCE\tIN A ROW\tSINCE\tLAST SUCCESS\tLAST ERROR\n", len(st.Failing))
		for _, f := range st.Failing {
			last := "never"
			if !f.LastSuccess.IsZero() {
				last = since(f.LastSuccess) + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\t%s\t%s\n", machineLabel(f.Machine, f.Unit), f.Source, f.Failures,
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

// machineLabel is "unit (uuid)", or the UUID alone.
func machineLabel(uuid, unit string) string {
	if unit == "" {
		return uuid
	}
	return strings.TrimSpace(unit + " (" + uuid + ")")
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
