package coordinator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/turku-backup/turku-storage/pyjson"
)

// StorageIdentity is the local storage unit, which the coordinator registers
// (or refreshes) by itself at start, so it never needs a registration auth.
// The fields are the storage unit's own config keys.
type StorageIdentity struct {
	Name            string   // name
	Secret          string   // secret
	SSHPingHost     string   // ssh_ping_host
	SSHPingPort     int      // ssh_ping_port
	SSHPingUser     string   // ssh_ping_user
	SSHPingHostKeys []string // ssh_ping_host_keys, authorized_keys form
}

// Options configure a Coordinator.
type Options struct {
	// DBPath is the SQLite database file (created if missing).
	DBPath string
	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Location is the time zone schedules are computed in (the storage
	// unit's timezone key); nil means UTC, as turku-api's default.
	Location *time.Location
	// Storage is the local storage unit; every machine is assigned to it.
	Storage StorageIdentity
	// RegistrationSecret, when set, makes sure a machine registration auth
	// named RegistrationAuthName exists with this secret (config key
	// machine_registration_secret). Agents send it as api_auth_name /
	// api_auth_secret on their first update_config.
	RegistrationSecret string
	// Argon2 are the hashing costs for new secrets; zero means DefaultArgon2.
	Argon2 Argon2Params
	// Limits bound what Handler admits; zero fields mean DefaultLimits.
	Limits Limits
}

// Names of the auths the coordinator manages itself. Machine Registrations
// is also turku_auth_create's default name, which agents' configs expect.
const (
	RegistrationAuthName = "Machine Registrations"
	localStorageAuthName = "Local storage unit (embedded coordinator)"
)

// Coordinator is the embedded subset of turku-api: it registers machines,
// tells agents and the storage unit what is due, and records backup logs.
type Coordinator struct {
	store       *Store
	log         *slog.Logger
	now         func() time.Time
	loc         *time.Location
	storageName string
	admission   *admission
}

// New opens the database, migrates it, registers the local storage unit and
// the machine registration auth, and returns a coordinator ready to serve.
func New(opts Options) (*Coordinator, error) {
	if opts.Storage.Name == "" {
		return nil, errors.New("coordinator: storage name is required")
	}
	if opts.Storage.Secret == "" {
		return nil, errors.New("coordinator: storage secret is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	ctx := context.Background()
	store, err := OpenStore(ctx, opts.DBPath, StoreOptions{Logger: log, Now: now, Argon2: opts.Argon2})
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	c := &Coordinator{store: store, log: log, now: now, loc: loc, storageName: opts.Storage.Name,
		admission: newAdmission(opts.Limits, now, log)}
	if err := c.registerLocalStorage(ctx, opts.Storage); err != nil {
		store.Close()
		return nil, fmt.Errorf("coordinator: register storage %s: %w", opts.Storage.Name, err)
	}
	if opts.RegistrationSecret != "" {
		if err := store.ensureAuth(ctx, RegistrationAuthName, "machine_reg", opts.RegistrationSecret); err != nil {
			store.Close()
			return nil, fmt.Errorf("coordinator: machine registration auth: %w", err)
		}
	}
	return c, nil
}

// Store returns the coordinator's database, for the admin operations.
func (c *Coordinator) Store() *Store { return c.store }

// Close closes the database.
func (c *Coordinator) Close() error { return c.store.Close() }

// registerLocalStorage creates or refreshes the local storage unit's row.
// It needs an auth to point at (turku-api's Storage.auth is required); an
// inactive storage_reg auth with a discarded random secret serves, so the
// row and an export stay valid without opening storage registration.
func (c *Coordinator) registerLocalStorage(ctx context.Context, id StorageIdentity) error {
	s := c.store
	keys := id.SSHPingHostKeys
	if keys == nil {
		keys = []string{}
	}
	port := id.SSHPingPort
	if port == 0 {
		port = 22
	}
	user := id.SSHPingUser
	if user == "" {
		user = "root"
	}
	existing, err := s.storageByName(ctx, s.db, id.Name, false)
	if err != nil {
		return err
	}
	// Hash outside the transaction: argon2 is slow.
	var newHash string
	if existing == nil || !s.secrets.verify(id.Secret, existing.SecretHash) {
		if newHash, err = s.secrets.hash(id.Secret); err != nil {
			return err
		}
	}
	var authHash string
	if existing == nil {
		throwaway, err := randomSecret(30)
		if err != nil {
			return err
		}
		if authHash, err = s.secrets.hash(throwaway); err != nil {
			return err
		}
	}
	now := c.now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		st, err := s.storageByName(ctx, tx, id.Name, false)
		if err != nil {
			return err
		}
		if st == nil {
			auth, err := s.authByName(ctx, tx, localStorageAuthName)
			if err != nil {
				return err
			}
			if auth == nil {
				authID, err := newUUID()
				if err != nil {
					return err
				}
				auth = &authRow{ID: authID, Name: localStorageAuthName, SecretHash: authHash,
					SecretType: "storage_reg", Active: false, DateAdded: now}
				if err := insertRow(ctx, tx, "auths", authCols, auth); err != nil {
					return err
				}
			}
			sid, err := newUUID()
			if err != nil {
				return err
			}
			st = &storageRow{ID: sid, Name: id.Name, SecretHash: newHash, SSHPingHost: id.SSHPingHost,
				SSHPingHostKeys: pyjson.DumpStrings(keys), SSHPingPort: int64(port), SSHPingUser: user,
				AuthID: auth.ID, Active: true, Published: true, DateRegistered: now, DateUpdated: now}
			c.log.Info("local storage unit registered", "storage", id.Name)
			return insertRow(ctx, tx, "storages", storageCols, st)
		}
		before := *st
		if newHash != "" {
			st.SecretHash = newHash
		}
		st.SSHPingHost, st.SSHPingPort, st.SSHPingUser = id.SSHPingHost, int64(port), user
		st.SSHPingHostKeys = pyjson.DumpStrings(keys)
		st.Active = true
		if *st == before {
			return nil
		}
		st.DateUpdated = now
		return updateRow(ctx, tx, "storages", storageCols, st)
	})
}

// ensureAuth makes sure an active auth of the given type and name accepts
// secret, rehashing it when the configured secret changed.
func (s *Store) ensureAuth(ctx context.Context, name, secretType, secret string) error {
	a, err := s.authByName(ctx, s.db, name)
	if err != nil {
		return err
	}
	if a != nil && a.SecretType != secretType {
		return fmt.Errorf("auth %q exists with type %s, not %s", name, a.SecretType, secretType)
	}
	if a != nil && a.Active && s.secrets.verify(secret, a.SecretHash) {
		return nil
	}
	h, err := s.secrets.hash(secret)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		a, err := s.authByName(ctx, tx, name)
		if err != nil {
			return err
		}
		if a == nil {
			id, err := newUUID()
			if err != nil {
				return err
			}
			s.log.Info("registration auth created", "auth", name, "type", secretType)
			return insertRow(ctx, tx, "auths", authCols, &authRow{ID: id, Name: name, SecretHash: h,
				SecretType: secretType, Active: true, DateAdded: s.now()})
		}
		a.SecretHash, a.Active = h, true
		s.log.Info("registration auth secret updated", "auth", name, "type", secretType)
		return updateRow(ctx, tx, "auths", authCols, a)
	})
}
