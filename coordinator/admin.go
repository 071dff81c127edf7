package coordinator

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Admin operations, for the turku-storage CLI. Where they take a machine,
// it may be given by UUID or by unit name (which must then be unique).

// Machine is a registered machine, as the admin commands show it.
type Machine struct {
	UUID            string
	UnitName        string
	EnvironmentName string // "" when unset
	ServiceName     string // "" when unset
	Comment         string // "" when unset
	Storage         string // storage unit name
	Active          bool   // false: disabled by an admin
	Published       bool   // false: withdrawn by its agent
	Registered      time.Time
	Updated         time.Time
	CheckedIn       time.Time // zero: never
	Sources         int
}

// Source is a machine's source, as the admin commands show it.
type Source struct {
	Machine      string // machine UUID
	UnitName     string
	Name         string
	Path         string
	Frequency    string
	Retention    string
	Comment      string
	Active       bool
	Published    bool
	Success      bool      // whether the last backup succeeded
	LastBackedUp time.Time // zero: never
	NextBackup   time.Time
}

// BackupLog is one backup report.
type BackupLog struct {
	Machine  string // machine UUID
	UnitName string
	Source   string
	Storage  string // storage unit name; "" when unknown
	Date     time.Time
	Success  bool
	Begin    time.Time // zero when not reported
	End      time.Time // zero when not reported
	Snapshot string
	Summary  string
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func tm(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

// machineFilter returns the WHERE clause (on alias m) and arguments that
// restrict a listing to one machine, by UUID or unit name; none for "".
func (s *Store) machineFilter(ctx context.Context, machine string) (string, []any, error) {
	if machine == "" {
		return "", nil, nil
	}
	id, _, err := s.resolveMachine(ctx, s.db, machine)
	if err != nil {
		return "", nil, err
	}
	return ` WHERE m.id = ?`, []any{id}, nil
}

// resolveMachine finds a machine's id by UUID or unit name.
func (s *Store) resolveMachine(ctx context.Context, q querier, ref string) (id, uuid string, err error) {
	if u, perr := parseUUID(ref); perr == nil {
		err := q.QueryRowContext(ctx, `SELECT id, uuid FROM machines WHERE uuid = ?`, formatUUID(u)).Scan(&id, &uuid)
		if err == nil {
			return id, uuid, nil
		}
		if err != sql.ErrNoRows {
			return "", "", fmt.Errorf("look up machine %s: %w", ref, err)
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT id, uuid FROM machines WHERE unit_name = ? LIMIT 2`, ref)
	if err != nil {
		return "", "", fmt.Errorf("look up machine %s: %w", ref, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if err := rows.Scan(&id, &uuid); err != nil {
			return "", "", fmt.Errorf("look up machine %s: %w", ref, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return "", "", fmt.Errorf("look up machine %s: %w", ref, err)
	}
	switch n {
	case 0:
		return "", "", fmt.Errorf("machine %s: %w", ref, ErrNotFound)
	case 1:
		return id, uuid, nil
	}
	return "", "", fmt.Errorf("machine %s: %w", ref, ErrAmbiguous)
}

// ListMachines returns every machine, ordered by unit name.
func (s *Store) ListMachines(ctx context.Context) ([]Machine, error) {
	var out []Machine
	var r machineRow
	var storage string
	var n int
	err := scanEach(ctx, s.db, "list machines", append(r.dest(), &storage, &n), func() {
		out = append(out, Machine{UUID: r.UUID, UnitName: r.UnitName, EnvironmentName: str(r.EnvironmentName),
			ServiceName: str(r.ServiceName), Comment: str(r.Comment), Storage: storage, Active: r.Active,
			Published: r.Published, Registered: r.DateRegistered, Updated: r.DateUpdated,
			CheckedIn: tm(r.DateCheckedIn), Sources: n})
	}, `SELECT `+prefixCols("m", machineCols)+`, st.name,
		(SELECT count(*) FROM sources WHERE machine_id = m.id)
		FROM machines m JOIN storages st ON st.id = m.storage_id ORDER BY m.unit_name, m.uuid`)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetMachineActive enables or disables a machine. A disabled machine is
// refused by every agent call ("Bad auth") and drops out of the storage
// unit's list of machines, so its key stops working at the next refresh.
func (s *Store) SetMachineActive(ctx context.Context, machine string, active bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, uuid, err := s.resolveMachine(ctx, tx, machine)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET active = ? WHERE id = ?`, active, id); err != nil {
			return fmt.Errorf("set machine %s active=%t: %w", uuid, active, err)
		}
		s.log.Info("machine active changed", "machine", uuid, "active", active)
		return nil
	})
}

// ListSources returns the sources of one machine (by UUID or unit name), or
// of all machines when machine is "".
func (s *Store) ListSources(ctx context.Context, machine string) ([]Source, error) {
	query := `SELECT ` + prefixCols("s", sourceCols) + `, m.uuid, m.unit_name
		FROM sources s JOIN machines m ON m.id = s.machine_id`
	where, args, err := s.machineFilter(ctx, machine)
	if err != nil {
		return nil, err
	}
	query += where
	query += ` ORDER BY m.unit_name, m.uuid, s.name`
	var out []Source
	var r sourceRow
	var uuid, unit string
	err = scanEach(ctx, s.db, "list sources", append(r.dest(), &uuid, &unit), func() {
		out = append(out, Source{Machine: uuid, UnitName: unit, Name: r.Name, Path: r.Path,
			Frequency: r.Frequency, Retention: r.Retention, Comment: str(r.Comment), Active: r.Active,
			Published: r.Published, Success: r.Success, LastBackedUp: tm(r.DateLastBackedUp),
			NextBackup: r.DateNextBackup})
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RunNow makes a machine's source due immediately (every source of the
// machine when source is ""): the next agent ping backs it up.
func (s *Store) RunNow(ctx context.Context, machine, source string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, uuid, err := s.resolveMachine(ctx, tx, machine)
		if err != nil {
			return err
		}
		query := `UPDATE sources SET date_next_backup = ? WHERE machine_id = ?`
		args := []any{dbTime(s.now()), id}
		if source != "" {
			query += ` AND name = ?`
			args = append(args, source)
		}
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("machine %s: schedule now: %w", uuid, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 && source != "" {
			return fmt.Errorf("machine %s source %s: %w", uuid, source, ErrNotFound)
		}
		s.log.Info("backup scheduled now", "machine", uuid, "source", source)
		return nil
	})
}

// Logs returns the newest backup logs first, of one machine (by UUID or
// unit name) or of all when machine is ""; limit <= 0 means no limit.
func (s *Store) Logs(ctx context.Context, machine string, limit int) ([]BackupLog, error) {
	query := `SELECT ` + prefixCols("l", backupLogCols) + `, s.name, m.uuid, m.unit_name, COALESCE(st.name, '')
		FROM backup_logs l JOIN sources s ON s.id = l.source_id JOIN machines m ON m.id = s.machine_id
		LEFT JOIN storages st ON st.id = l.storage_id`
	where, args, err := s.machineFilter(ctx, machine)
	if err != nil {
		return nil, err
	}
	query += where
	query += ` ORDER BY l.date DESC, l.rowid DESC`
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []BackupLog
	var r backupLogRow
	var src, uuid, unit, storage string
	err = scanEach(ctx, s.db, "list backup logs", append(r.dest(), &src, &uuid, &unit, &storage), func() {
		out = append(out, BackupLog{Machine: uuid, UnitName: unit, Source: src, Storage: storage,
			Date: r.Date, Success: r.Success, Begin: tm(r.DateBegin), End: tm(r.DateEnd),
			Snapshot: str(r.Snapshot), Summary: str(r.Summary)})
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultAuthName is turku_auth_create's name for a registration auth of
// kind "machine" or "storage"; "" for another kind.
func DefaultAuthName(kind string) string {
	return map[string]string{"machine": RegistrationAuthName, "storage": "Storage Registrations"}[kind]
}

// CreateRegistrationAuth creates a registration auth and returns its
// secret, which is stored only hashed: print it once. kind is "machine"
// (agents' api_auth_name/api_auth_secret) or "storage" (another storage
// unit's api_auth_name/api_auth_secret); name "" means turku_auth_create's
// default, "Machine Registrations" or "Storage Registrations".
func (s *Store) CreateRegistrationAuth(ctx context.Context, kind, name string) (string, error) {
	var secretType string
	switch kind {
	case "machine":
		secretType = "machine_reg"
	case "storage":
		secretType = "storage_reg"
	default:
		return "", fmt.Errorf("registration auth kind %q: want machine or storage", kind)
	}
	if name == "" {
		name = DefaultAuthName(kind)
	}
	secret, err := randomSecret(30)
	if err != nil {
		return "", err
	}
	hash, err := s.secrets.hash(secret)
	if err != nil {
		return "", err
	}
	id, err := newUUID()
	if err != nil {
		return "", err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		a, err := s.authByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if a != nil {
			return fmt.Errorf("registration auth %q: %w", name, ErrExists)
		}
		return insertRow(ctx, tx, "auths", authCols, &authRow{ID: id, Name: name, SecretHash: hash,
			SecretType: secretType, Active: true, DateAdded: s.now()})
	})
	if err != nil {
		return "", err
	}
	s.log.Info("registration auth created", "auth", name, "type", secretType)
	return secret, nil
}

// prefixCols qualifies each column of a column list with a table alias.
func prefixCols(alias, cols string) string {
	out := ""
	for i, c := range splitCols(cols) {
		if i > 0 {
			out += ", "
		}
		out += alias + "." + c
	}
	return out
}
