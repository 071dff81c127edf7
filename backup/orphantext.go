package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/turku-backup/turku-storage/internal/words"
)

// What `orphans` and `orphans purge` print.

// orphanJSON is an Orphan as `orphans --json` prints it. Operators script
// against these names: add fields, never rename or drop one.
type orphanJSON struct {
	UUID  string    `json:"uuid"`
	Unit  string    `json:"unit,omitempty"`
	Names []string  `json:"names"`
	Path  string    `json:"path"`
	Since time.Time `json:"orphaned_since"`
	// UsageBytes is the space its snapshots take; with UsageKnown false,
	// only that of the sources whose figure is known.
	UsageBytes int64  `json:"usage_bytes"`
	UsageKnown bool   `json:"usage_known"`
	Error      string `json:"error,omitempty"`
}

// MarshalJSON writes o as `orphans --json` prints it.
func (o Orphan) MarshalJSON() ([]byte, error) {
	j := orphanJSON{UUID: o.UUID, Unit: o.Unit, Names: o.Names, Path: o.Dir, Since: o.Since,
		UsageBytes: o.Usage.Bytes, UsageKnown: o.Usage.Known}
	if o.UsageErr != nil {
		j.Error = o.UsageErr.Error()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (o *Orphan) UnmarshalJSON(data []byte) error {
	var j orphanJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*o = Orphan{UUID: j.UUID, Unit: j.Unit, Names: j.Names, Dir: j.Path, Since: j.Since,
		Usage: SnapshotUsage{Bytes: j.UsageBytes, Known: j.UsageKnown}}
	if j.Error != "" {
		o.UsageErr = errors.New(j.Error)
	}
	return nil
}

// WriteOrphans writes orphans as the table `orphans` prints, their ages
// as of now.
func WriteOrphans(w io.Writer, orphans []Orphan, now time.Time) error {
	if len(orphans) == 0 {
		_, err := fmt.Fprintln(w, "No orphaned machines.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tUNIT\tNAMES\tORPHANED SINCE\tFOR\tSPACE")
	for _, o := range orphans {
		space := humanize.IBytes(uint64(o.Usage.Bytes))
		switch {
		case o.UsageErr != nil:
			space = "error: " + o.UsageErr.Error()
		case !o.Usage.Known:
			space = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.UUID, words.Dash(o.Unit), words.Dash(strings.Join(o.Names, ",")),
			o.Since.Format(time.RFC3339), words.Age(now.Sub(o.Since)), space)
	}
	return tw.Flush()
}

// String is u for a person: "1.5 GiB", or "at least 1.5 GiB" when some
// source's figure is unknown.
func (u SnapshotUsage) String() string {
	if !u.Known {
		return "at least " + humanize.IBytes(uint64(u.Bytes))
	}
	return humanize.IBytes(uint64(u.Bytes))
}

// String is o as purge's confirmation names it.
func (o Orphan) String() string {
	return fmt.Sprintf("%s (%s), orphaned since %s, %s of snapshots", o.UUID, words.Dash(o.Unit), o.Since.Format(time.RFC3339), o.Usage)
}

// String is what purge says it removed.
func (p Purged) String() string {
	return fmt.Sprintf("Purged machine %s: removed %s (%s of snapshots) and %s", p.UUID, words.Dash(p.Dir), p.Usage, strings.Join(p.Links, ", "))
}

// Purge is `orphans purge`: it refuses an assigned machine
// (checkUnassigned) before anything is asked, then, with confirm, asks it
// about the machine as a person knows it (its orphan record, else its
// UUID) and deletes nothing unless it returns nil, then deletes the
// machine (PurgeMachine).
func Purge(opts PurgeOptions, uuid string, confirm func(what string) error) (Purged, error) {
	if err := opts.checkUnassigned(uuid); err != nil {
		return Purged{UUID: uuid}, err
	}
	if confirm != nil {
		what := uuid
		orphans, _ := OrphansIn(opts.VarDir)
		for _, o := range orphans {
			if o.UUID == uuid {
				what = o.String()
			}
		}
		if err := confirm(what); err != nil {
			return Purged{UUID: uuid}, err
		}
	}
	return PurgeMachine(opts, uuid)
}

// checkUnassigned refuses, before anything is asked or deleted, a
// machine opts.Assigned lists, or any when that cannot be read;
// PurgeMachine checks again under the machine's lock.
func (opts PurgeOptions) checkUnassigned(uuid string) error {
	assigned, err := opts.Assigned()
	if err != nil {
		return fmt.Errorf("machine %s: cannot tell whether it is assigned here (key cache: %w); nothing deleted", uuid, err)
	}
	if m, ok := assigned[uuid]; ok {
		return fmt.Errorf("machine %s (%s) is %w; nothing deleted", uuid, m.UnitName, ErrAssigned)
	}
	return nil
}
