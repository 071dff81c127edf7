package coordinator

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/turku-backup/turku-storage/internal/atomicfile"
)

// ExportFile writes Export's fixture to path, atomically and with mode
// 0600: it holds every secret hash. A failed export leaves path as it was.
func (s *Store) ExportFile(ctx context.Context, path string) error {
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if err := s.Export(ctx, f); err != nil {
		return err
	}
	return f.Commit()
}

// Export writes the registry as a Django fixture that turku-api's
// `django-admin loaddata` accepts, so a site can move from the embedded
// coordinator to a full turku-api:
//
//	[{"model": "turku_api.machine", "pk": "<uuid>", "fields": {...}}, ...]
//
// It holds every auth and storage unit (machines and storage units refer to
// them), machine, source and backup log, in that order, with the field names
// of turku_api/models.py. Secret hashes are in Django's argon2 format, so
// machines, storage units and registration auths keep their secrets.
// FilterSets do not exist here and are not exported. It reads one consistent
// snapshot of the database.
func (s *Store) Export(ctx context.Context, w io.Writer) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("export: begin: %w", err)
	}
	defer tx.Rollback()

	ew := &fixtureWriter{w: w}
	ew.write("[")
	auths, err := listRows[authRow](ctx, tx, `SELECT `+authCols+` FROM auths ORDER BY date_added, id`)
	if err != nil {
		return fmt.Errorf("export auths: %w", err)
	}
	for _, r := range auths {
		ew.object("turku_api.auth", r.ID, authFields{r.Name, r.SecretHash, r.SecretType, r.Comment, r.Active,
			djangoTime(r.DateAdded)})
	}
	storages, err := listRows[storageRow](ctx, tx, `SELECT `+storageCols+` FROM storages ORDER BY date_registered, id`)
	if err != nil {
		return fmt.Errorf("export storages: %w", err)
	}
	for _, r := range storages {
		ew.object("turku_api.storage", r.ID, storageFields{r.Name, r.SecretHash, r.Comment, r.SSHPingHost,
			r.SSHPingHostKeys, r.SSHPingPort, r.SSHPingUser, r.SpaceTotal, r.SpaceAvailable, r.AuthID,
			r.Active, r.Published, djangoTime(r.DateRegistered), djangoTime(r.DateUpdated),
			djangoNullTime(r.DateCheckedIn)})
	}
	machines, err := listRows[machineRow](ctx, tx, `SELECT `+machineCols+` FROM machines ORDER BY date_registered, id`)
	if err != nil {
		return fmt.Errorf("export machines: %w", err)
	}
	for _, r := range machines {
		ew.object("turku_api.machine", r.ID, machineFields{r.UUID, r.SecretHash, r.EnvironmentName,
			r.ServiceName, r.UnitName, r.Comment, r.SSHPublicKey, r.AuthID, r.StorageID, r.Active,
			r.Published, djangoTime(r.DateRegistered), djangoTime(r.DateUpdated),
			djangoNullTime(r.DateCheckedIn)})
	}
	sources, err := listRows[sourceRow](ctx, tx, `SELECT `+sourceCols+` FROM sources ORDER BY date_added, id`)
	if err != nil {
		return fmt.Errorf("export sources: %w", err)
	}
	for _, r := range sources {
		ew.object("turku_api.source", r.ID, sourceFields{r.Name, r.MachineID, r.Comment, r.Path, r.Filter,
			r.Exclude, r.Frequency, r.Retention, r.Bwlimit, r.SnapshotMode, r.PreserveHardLinks,
			r.SharedService, r.LargeRotatingFiles, r.LargeModifyingFiles, r.Active, r.Success, r.Published,
			djangoTime(r.DateAdded), djangoTime(r.DateUpdated), djangoNullTime(r.DateLastBackedUp),
			djangoTime(r.DateNextBackup)})
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+backupLogCols+` FROM backup_logs ORDER BY date, rowid`)
	if err != nil {
		return fmt.Errorf("export backup logs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r backupLogRow
		if err := rows.Scan(r.dest()...); err != nil {
			return fmt.Errorf("export backup logs: %w", err)
		}
		ew.object("turku_api.backuplog", r.ID, backupLogFields{r.SourceID, djangoTime(r.Date), r.StorageID,
			r.Success, djangoNullTime(r.DateBegin), djangoNullTime(r.DateEnd), r.Snapshot, r.Summary})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export backup logs: %w", err)
	}
	ew.write("\n]\n")
	if ew.err != nil {
		return fmt.Errorf("export: %w", ew.err)
	}
	return nil
}

// fixtureWriter writes fixture objects, remembering the first error.
type fixtureWriter struct {
	w   io.Writer
	n   int
	err error
}

func (f *fixtureWriter) write(s string) {
	if f.err == nil {
		_, f.err = io.WriteString(f.w, s)
	}
}

func (f *fixtureWriter) object(model, pk string, fields any) {
	b, err := json.Marshal(struct {
		Model  string `json:"model"`
		PK     string `json:"pk"`
		Fields any    `json:"fields"`
	}{model, pk, fields})
	if err != nil {
		if f.err == nil {
			f.err = err
		}
		return
	}
	if f.n > 0 {
		f.write(",")
	}
	f.n++
	f.write("\n")
	f.write(string(b))
}

// djangoTime formats t as Django's JSON serializer does: ISO 8601 in UTC
// with "Z", milliseconds only when there are any.
func djangoTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 != 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05Z")
}

func djangoNullTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := djangoTime(*t)
	return &s
}

// The fixture "fields" of each model, in turku_api/models.py order.

type authFields struct {
	Name       string  `json:"name"`
	SecretHash string  `json:"secret_hash"`
	SecretType string  `json:"secret_type"`
	Comment    *string `json:"comment"`
	Active     bool    `json:"active"`
	DateAdded  string  `json:"date_added"`
}

type storageFields struct {
	Name            string  `json:"name"`
	SecretHash      string  `json:"secret_hash"`
	Comment         *string `json:"comment"`
	SSHPingHost     string  `json:"ssh_ping_host"`
	SSHPingHostKeys string  `json:"ssh_ping_host_keys"`
	SSHPingPort     int64   `json:"ssh_ping_port"`
	SSHPingUser     string  `json:"ssh_ping_user"`
	SpaceTotal      int64   `json:"space_total"`
	SpaceAvailable  int64   `json:"space_available"`
	Auth            string  `json:"auth"`
	Active          bool    `json:"active"`
	Published       bool    `json:"published"`
	DateRegistered  string  `json:"date_registered"`
	DateUpdated     string  `json:"date_updated"`
	DateCheckedIn   *string `json:"date_checked_in"`
}

type machineFields struct {
	UUID            string  `json:"uuid"`
	SecretHash      string  `json:"secret_hash"`
	EnvironmentName *string `json:"environment_name"`
	ServiceName     *string `json:"service_name"`
	UnitName        string  `json:"unit_name"`
	Comment         *string `json:"comment"`
	SSHPublicKey    string  `json:"ssh_public_key"`
	Auth            string  `json:"auth"`
	Storage         string  `json:"storage"`
	Active          bool    `json:"active"`
	Published       bool    `json:"published"`
	DateRegistered  string  `json:"date_registered"`
	DateUpdated     string  `json:"date_updated"`
	DateCheckedIn   *string `json:"date_checked_in"`
}

type sourceFields struct {
	Name                string  `json:"name"`
	Machine             string  `json:"machine"`
	Comment             *string `json:"comment"`
	Path                string  `json:"path"`
	Filter              string  `json:"filter"`
	Exclude             string  `json:"exclude"`
	Frequency           string  `json:"frequency"`
	Retention           string  `json:"retention"`
	Bwlimit             *string `json:"bwlimit"`
	SnapshotMode        *string `json:"snapshot_mode"`
	PreserveHardLinks   bool    `json:"preserve_hard_links"`
	SharedService       bool    `json:"shared_service"`
	LargeRotatingFiles  bool    `json:"large_rotating_files"`
	LargeModifyingFiles bool    `json:"large_modifying_files"`
	Active              bool    `json:"active"`
	Success             bool    `json:"success"`
	Published           bool    `json:"published"`
	DateAdded           string  `json:"date_added"`
	DateUpdated         string  `json:"date_updated"`
	DateLastBackedUp    *string `json:"date_last_backed_up"`
	DateNextBackup      string  `json:"date_next_backup"`
}

type backupLogFields struct {
	Source    string  `json:"source"`
	Date      string  `json:"date"`
	Storage   *string `json:"storage"`
	Success   bool    `json:"success"`
	DateBegin *string `json:"date_begin"`
	DateEnd   *string `json:"date_end"`
	Snapshot  *string `json:"snapshot"`
	Summary   *string `json:"summary"`
}
