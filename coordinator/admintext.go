package coordinator

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/turku-backup/turku-storage/coordinator/schedule"
	"github.com/turku-backup/turku-storage/internal/words"
)

// The admin commands' output for a person: `machines list`, `sources
// list` and the warnings of `coordinator export`.

// WriteMachines writes list as the table `machines list` prints.
func WriteMachines(w io.Writer, list []Machine) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UUID\tUNIT\tENVIRONMENT\tSERVICE\tACTIVE\tPUBLISHED\tSOURCES\tCHECKED IN")
	for _, m := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%d\t%s\n", m.UUID, m.UnitName, words.Dash(m.EnvironmentName),
			words.Dash(m.ServiceName), m.Active, m.Published, m.Sources, words.When(m.CheckedIn))
	}
	return tw.Flush()
}

// WriteSources writes list as the table `sources list` prints.
func WriteSources(w io.Writer, list []Source) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UNIT\tSOURCE\tPATH\tFREQUENCY\tRETENTION\tACTIVE\tLAST OK\tLAST BACKUP\tNEXT BACKUP")
	for _, src := range list {
		// A source that never ran has no outcome, though its success
		// column starts true.
		lastOK := fmt.Sprint(src.Success)
		if src.LastBackedUp.IsZero() {
			lastOK = "never"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", src.UnitName, src.Name, src.Path, words.Dash(src.Frequency),
			words.Dash(src.Retention), src.Active && src.Published, lastOK, words.When(src.LastBackedUp), words.When(src.NextBackup))
	}
	return tw.Flush()
}

// WarnCron writes a warning for each source whose "cron …" frequency
// turku-api cannot schedule: its views.py calls the croniter module as a
// function, so such a source gets HTTP 500 on every report after a move
// to turku-api (Export).
func WarnCron(w io.Writer, sources []Source) {
	for _, src := range sources {
		if schedule.IsCron(src.Frequency) {
			fmt.Fprintf(w, "warning: %s %s has frequency %q: turku-api fails on cron frequencies (HTTP 500 on every report); change it to hourly/daily/weekly/monthly before moving\n",
				src.UnitName, src.Name, src.Frequency)
		}
	}
}
