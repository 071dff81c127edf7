package coordinator

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Sentinel errors of the admin operations; check with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrAmbiguous = errors.New("ambiguous: more than one machine matches")
	ErrExists    = errors.New("already exists")
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Argon2 are the cost parameters for new secret hashes; zero means
	// DefaultArgon2. Tests use tiny values.
	Argon2 Argon2Params
}

// Store is the coordinator's SQLite database: the registry of storage units,
// machines and sources, backup logs and registration auths. It is safe for
// concurrent use, also by several processes (a CLI beside a running serve):
// the file is in WAL mode with a busy timeout, and every write transaction
// takes the write lock up front (BEGIN IMMEDIATE).
type Store struct {
	db      *sql.DB
	log     *slog.Logger
	now     func() time.Time
	secrets *secrets
}

// busyTimeout is how long a connection waits for another writer.
const busyTimeout = 10 * time.Second

// OpenExistingStore opens the database at path, as OpenStore, for the
// admin commands: a database serve never created is an error saying so.
func OpenExistingStore(ctx context.Context, path string, opts StoreOptions) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("built-in coordinator database %s: %w (has 'serve' run yet?)", path, err)
	}
	return OpenStore(ctx, path, opts)
}

// OpenStore opens (creating if needed) the database at path and brings its
// schema up to date.
func OpenStore(ctx context.Context, path string, opts StoreOptions) (*Store, error) {
	if path == "" {
		return nil, errors.New("open coordinator database: no path given")
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("open coordinator database %s: path must not contain '?'", path)
	}
	if err := privateDBFiles(path, cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))); err != nil {
		return nil, fmt.Errorf("open coordinator database %s: %w", path, err)
	}
	dsn := fmt.Sprintf("file:%s?_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate",
		path, busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open coordinator database %s: %w", path, err)
	}
	// SQLite has one writer at a time anyway; a few connections let reads
	// proceed beside it.
	db.SetMaxOpenConns(4)
	s := &Store{db: db, log: opts.Logger, now: opts.Now, secrets: newSecrets(opts.Argon2)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open coordinator database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// SchemaVersion returns how many migrations the database has had.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return fmt.Errorf("initialise schema_version: %w", err)
			}
		case err != nil:
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this program knows (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			s.log.Info("coordinator database migrated", "version", i+1)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		return nil
	})
}

// tx runs fn in a write transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Times are stored as INTEGER Unix microseconds, the precision of Python's
// datetime.

func dbTime(t time.Time) int64 { return t.UnixMicro() }

func dbNullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans an INTEGER column into a time.Time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("time column: got %T, want integer", v)
	}
	*c.t = time.UnixMicro(n).UTC()
	return nil
}

// nullTimeCol scans a nullable INTEGER column into a *time.Time.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// splitCols splits a column list.
func splitCols(cols string) []string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// setClause turns "a, b, c" into "a = ?, b = ?, c = ?".
func setClause(cols string) string {
	parts := splitCols(cols)
	for i, p := range parts {
		parts[i] = p + " = ?"
	}
	return strings.Join(parts, ", ")
}

func placeholders(cols string) string {
	n := strings.Count(cols, ",") + 1
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Rows mirror turku-api's models; pointer fields are the nullable ones.

type authRow struct {
	ID, Name, SecretHash, SecretType string
	Comment                          *string
	Active                           bool
	DateAdded                        time.Time
}

const authCols = `id, name, secret_hash, secret_type, comment, active, date_added`

func (r *authRow) dest() []any {
	return []any{&r.ID, &r.Name, &r.SecretHash, &r.SecretType, &r.Comment, &r.Active, timeCol{&r.DateAdded}}
}

func (r *authRow) args() []any {
	return []any{r.ID, r.Name, r.SecretHash, r.SecretType, r.Comment, r.Active, dbTime(r.DateAdded)}
}

type storageRow struct {
	ID, Name, SecretHash         string
	Comment                      *string
	SSHPingHost, SSHPingHostKeys string
	SSHPingPort                  int64
	SSHPingUser                  string
	SpaceTotal, SpaceAvailable   int64
	AuthID                       string
	Active, Published            bool
	DateRegistered, DateUpdated  time.Time
	DateCheckedIn                *time.Time
}

const storageCols = `id, name, secret_hash, comment, ssh_ping_host, ssh_ping_host_keys, ssh_ping_port,
	ssh_ping_user, space_total, space_available, auth_id, active, published, date_registered,
	date_updated, date_checked_in`

func (r *storageRow) dest() []any {
	return []any{&r.ID, &r.Name, &r.SecretHash, &r.Comment, &r.SSHPingHost, &r.SSHPingHostKeys,
		&r.SSHPingPort, &r.SSHPingUser, &r.SpaceTotal, &r.SpaceAvailable, &r.AuthID, &r.Active,
		&r.Published, timeCol{&r.DateRegistered}, timeCol{&r.DateUpdated}, nullTimeCol{&r.DateCheckedIn}}
}

func (r *storageRow) args() []any {
	return []any{r.ID, r.Name, r.SecretHash, r.Comment, r.SSHPingHost, r.SSHPingHostKeys,
		r.SSHPingPort, r.SSHPingUser, r.SpaceTotal, r.SpaceAvailable, r.AuthID, r.Active,
		r.Published, dbTime(r.DateRegistered), dbTime(r.DateUpdated), dbNullTime(r.DateCheckedIn)}
}

type machineRow struct {
	ID, UUID, SecretHash         string
	EnvironmentName, ServiceName *string
	UnitName                     string
	Comment                      *string
	SSHPublicKey                 string
	AuthID, StorageID            string
	Active, Published            bool
	DateRegistered, DateUpdated  time.Time
	DateCheckedIn                *time.Time
}

const machineCols = `id, uuid, secret_hash, environment_name, service_name, unit_name, comment,
	ssh_public_key, auth_id, storage_id, active, published, date_registered, date_updated,
	date_checked_in`

func (r *machineRow) dest() []any {
	return []any{&r.ID, &r.UUID, &r.SecretHash, &r.EnvironmentName, &r.ServiceName, &r.UnitName,
		&r.Comment, &r.SSHPublicKey, &r.AuthID, &r.StorageID, &r.Active, &r.Published,
		timeCol{&r.DateRegistered}, timeCol{&r.DateUpdated}, nullTimeCol{&r.DateCheckedIn}}
}

func (r *machineRow) args() []any {
	return []any{r.ID, r.UUID, r.SecretHash, r.EnvironmentName, r.ServiceName, r.UnitName,
		r.Comment, r.SSHPublicKey, r.AuthID, r.StorageID, r.Active, r.Published,
		dbTime(r.DateRegistered), dbTime(r.DateUpdated), dbNullTime(r.DateCheckedIn)}
}

type sourceRow struct {
	ID, Name, MachineID              string
	Comment                          *string
	Path, Filter, Exclude            string
	Frequency, Retention             string
	Bwlimit, SnapshotMode            *string
	PreserveHardLinks, SharedService bool
	LargeRotatingFiles               bool
	LargeModifyingFiles              bool
	Active, Success, Published       bool
	DateAdded, DateUpdated           time.Time
	DateLastBackedUp                 *time.Time
	DateNextBackup                   time.Time
}

const sourceCols = `id, name, machine_id, comment, path, filter, exclude, frequency, retention,
	bwlimit, snapshot_mode, preserve_hard_links, shared_service, large_rotating_files,
	large_modifying_files, active, success, published, date_added, date_updated,
	date_last_backed_up, date_next_backup`

func (r *sourceRow) dest() []any {
	return []any{&r.ID, &r.Name, &r.MachineID, &r.Comment, &r.Path, &r.Filter, &r.Exclude,
		&r.Frequency, &r.Retention, &r.Bwlimit, &r.SnapshotMode, &r.PreserveHardLinks,
		&r.SharedService, &r.LargeRotatingFiles, &r.LargeModifyingFiles, &r.Active, &r.Success,
		&r.Published, timeCol{&r.DateAdded}, timeCol{&r.DateUpdated},
		nullTimeCol{&r.DateLastBackedUp}, timeCol{&r.DateNextBackup}}
}

func (r *sourceRow) args() []any {
	return []any{r.ID, r.Name, r.MachineID, r.Comment, r.Path, r.Filter, r.Exclude,
		r.Frequency, r.Retention, r.Bwlimit, r.SnapshotMode, r.PreserveHardLinks,
		r.SharedService, r.LargeRotatingFiles, r.LargeModifyingFiles, r.Active, r.Success,
		r.Published, dbTime(r.DateAdded), dbTime(r.DateUpdated),
		dbNullTime(r.DateLastBackedUp), dbTime(r.DateNextBackup)}
}

type backupLogRow struct {
	ID, SourceID       string
	Date               time.Time
	StorageID          *string
	Success            bool
	DateBegin, DateEnd *time.Time
	Snapshot, Summary  *string
}

const backupLogCols = `id, source_id, date, storage_id, success, date_begin, date_end, snapshot, summary`

func (r *backupLogRow) dest() []any {
	return []any{&r.ID, &r.SourceID, timeCol{&r.Date}, &r.StorageID, &r.Success,
		nullTimeCol{&r.DateBegin}, nullTimeCol{&r.DateEnd}, &r.Snapshot, &r.Summary}
}

func (r *backupLogRow) args() []any {
	return []any{r.ID, r.SourceID, dbTime(r.Date), r.StorageID, r.Success,
		dbNullTime(r.DateBegin), dbNullTime(r.DateEnd), r.Snapshot, r.Summary}
}

// row is what the generic helpers below need of a table row.
type row interface {
	dest() []any
	args() []any
}

func insertRow(ctx context.Context, q querier, table, cols string, r row) error {
	_, err := q.ExecContext(ctx, `INSERT INTO `+table+` (`+cols+`) VALUES (`+placeholders(cols)+`)`, r.args()...)
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	return nil
}

// updateRow writes every column of r; the first argument is the id.
func updateRow(ctx context.Context, q querier, table, cols string, r row) error {
	args := r.args()
	args = append(args, args[0])
	_, err := q.ExecContext(ctx, `UPDATE `+table+` SET `+setClause(cols)+` WHERE id = ?`, args...)
	if err != nil {
		return fmt.Errorf("update %s: %w", table, err)
	}
	return nil
}

// getRow scans the first row of a query into r; found is false when there
// is none.
func getRow(ctx context.Context, q querier, r row, query string, args ...any) (found bool, err error) {
	err = q.QueryRowContext(ctx, query, args...).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// scanEach runs query, scans each row into dest and calls row after each;
// its errors begin with what.
func scanEach(ctx context.Context, q querier, what string, dest []any, row func(), query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		row()
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// listRows runs a query and scans each row into a fresh value from mk.
func listRows[T any, P interface {
	*T
	row
}](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(P(&v).dest()...); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) storageByName(ctx context.Context, q querier, name string, activeOnly bool) (*storageRow, error) {
	return lookupRow[storageRow](ctx, q, "storage", name, `SELECT `+storageCols+` FROM storages WHERE name = ?`, activeOnly)
}

func (s *Store) machineByUUID(ctx context.Context, q querier, uuid string, activeOnly bool) (*machineRow, error) {
	return lookupRow[machineRow](ctx, q, "machine", uuid, `SELECT `+machineCols+` FROM machines WHERE uuid = ?`, activeOnly)
}

func (s *Store) authByName(ctx context.Context, q querier, name string) (*authRow, error) {
	return lookupRow[authRow](ctx, q, "auth", name, `SELECT `+authCols+` FROM auths WHERE name = ?`, false)
}

// lookupRow returns the row query finds for key, of active rows only when
// activeOnly, or nil when there is none; what names the table's rows in
// the error.
func lookupRow[T any, P interface {
	*T
	row
}](ctx context.Context, q querier, what, key, query string, activeOnly bool) (*T, error) {
	if activeOnly {
		query += ` AND active = 1`
	}
	var r T
	found, err := getRow(ctx, q, P(&r), query, key)
	if err != nil {
		return nil, fmt.Errorf("look up %s %s: %w", what, key, err)
	}
	if !found {
		return nil, nil
	}
	return &r, nil
}

// saveRow inserts r (isNew) or updates it.
func saveRow(ctx context.Context, q querier, table, cols string, r row, isNew bool) error {
	if isNew {
		return insertRow(ctx, q, table, cols, r)
	}
	return updateRow(ctx, q, table, cols, r)
}

// rowExists reports whether table has a row whose column equals value,
// active or not (turku-api's unique fields count disabled rows too). table
// and column are constants of the callers, never request data.
func rowExists(ctx context.Context, tx *sql.Tx, table, column string, value any) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE `+column+` = ?`, value).Scan(&n)
	return n > 0, err
}
