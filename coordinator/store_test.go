package coordinator

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), path, StoreOptions{Argon2: testArgon2})
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func tables(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	wantTables := []string{"auths", "backup_logs", "backup_logs_source_date", "machines", "machines_storage",
		"schema_version", "sources", "sources_machine_due", "storages"}

	t.Run("empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s := openTestStore(t, path)
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
			t.Errorf("version = %d, %v; want %d", v, err, len(migrations))
		}
		if diff := cmp.Diff(wantTables, tables(t, s)); diff != "" {
			t.Errorf("tables (-want +got):\n%s", diff)
		}
		var mode string
		if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
	})

	t.Run("old version", func(t *testing.T) {
		// A database left at version 1 by an older program, with data.
		path := filepath.Join(t.TempDir(), "c.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
			`INSERT INTO schema_version VALUES (1)`,
			migrations[0],
			`INSERT INTO auths VALUES ('a1', 'Machine Registrations', 'x', 'machine_reg', NULL, 1, 0)`,
		} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()

		s := openTestStore(t, path)
		if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
			t.Errorf("version = %d, %v; want %d", v, err, len(migrations))
		}
		if diff := cmp.Diff(wantTables, tables(t, s)); diff != "" {
			t.Errorf("tables (-want +got):\n%s", diff)
		}
		var name string
		if err := s.db.QueryRow(`SELECT name FROM auths WHERE id = 'a1'`).Scan(&name); err != nil {
			t.Errorf("data lost in migration: %v", err)
		}
		s.Close()

		// Reopening changes nothing.
		s = openTestStore(t, path)
		defer s.Close()
		if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
			t.Errorf("reopened version = %d, %v; want %d", v, err, len(migrations))
		}
		var rows int
		if err := s.db.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("schema_version rows = %d, %v; want 1", rows, err)
		}
	})

	t.Run("newer version", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.db")
		s := openTestStore(t, path)
		if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := OpenStore(ctx, path, StoreOptions{})
		if err == nil || !strings.Contains(err.Error(), "newer than this program") {
			t.Errorf("OpenStore of a newer schema: %v, want a refusal", err)
		}
	})
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newRegistered(t)
	st := f.c.Store()

	tests := []struct {
		name    string
		run     func() error
		wantErr error
	}{
		{"run now unknown machine", func() error { return st.RunNow(ctx, "nope", "") }, ErrNotFound},
		{"run now unknown source", func() error { return st.RunNow(ctx, "web1", "nope") }, ErrNotFound},
		{"disable unknown", func() error { return st.SetMachineActive(ctx, otherUUID, false) }, ErrNotFound},
		{"sources of unknown", func() error { _, err := st.ListSources(ctx, "nope"); return err }, ErrNotFound},
		{"duplicate auth", func() error { _, err := st.CreateRegistrationAuth(ctx, "machine", ""); return err }, ErrExists},
		{"bad auth kind", func() error { _, err := st.CreateRegistrationAuth(ctx, "admin", "x"); return err }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
		})
	}

	// Two machines with the same unit name are ambiguous by name.
	req := agentConfig(obj{})
	req["machine"].(obj)["uuid"] = otherUUID
	f.call(t, "/v1/update_config", req)
	if err := st.RunNow(ctx, "web1", ""); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("RunNow by shared unit name: %v, want ErrAmbiguous", err)
	}
	machines, err := st.ListMachines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	want := []Machine{
		{UUID: machineUUID, UnitName: "web1", EnvironmentName: "prod", ServiceName: "web", Storage: storageName,
			Active: true, Published: true, Registered: now, Updated: now, CheckedIn: now, Sources: 1},
		{UUID: otherUUID, UnitName: "web1", EnvironmentName: "prod", ServiceName: "web", Storage: storageName,
			Active: true, Published: true, Registered: now, Updated: now, CheckedIn: now},
	}
	if diff := cmp.Diff(want, machines); diff != "" {
		t.Errorf("ListMachines (-want +got):\n%s", diff)
	}

	// A new machine registration auth works for update_config.
	secret, err := st.CreateRegistrationAuth(ctx, "machine", "Second")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 30 {
		t.Errorf("secret %q: want 30 characters", secret)
	}
	req = agentConfig(obj{})
	req["machine"].(obj)["uuid"] = "0f8e2b6a-3c1d-4e7f-b5a9-8d2c6e4f1a3b"
	req["auth"] = obj{"name": "Second", "secret": secret}
	f.call(t, "/v1/update_config", req)

	// RunNow makes a source due at the store's clock.
	f.clock.Add(time.Hour)
	if err := st.RunNow(ctx, machineUUID, "etc"); err != nil {
		t.Fatal(err)
	}
	sources, err := st.ListSources(ctx, machineUUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 1 || !sources[0].NextBackup.Equal(f.clock.Now()) {
		t.Errorf("sources = %+v, want etc due at %v", sources, f.clock.Now())
	}
}

// TestOpenExistingStore: the admin commands do not create a database
// serve never made, and say so.
func TestOpenExistingStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.sqlite3")
	_, err := OpenExistingStore(context.Background(), path, StoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "has 'serve' run yet?") || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s and serve", err, path)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("database created: %v", err)
	}
}
