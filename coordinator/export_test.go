package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type fixtureObject struct {
	Model  string         `json:"model"`
	PK     string         `json:"pk"`
	Fields map[string]any `json:"fields"`
}

func TestExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newRegistered(t)
	if err := f.c.Store().RunNow(ctx, "web1", ""); err != nil {
		t.Fatal(err)
	}
	f.call(t, "/v1/storage_ping_source_update", obj{"storage": storageAuth(), "machine": obj{"uuid": machineUUID,
		"sources": obj{"etc": obj{"success": true, "snapshot": "s1", "time_begin": 1764081600, "time_end": 1764081601.5}}}})

	var buf bytes.Buffer
	if err := f.c.Store().Export(ctx, &buf); err != nil {
		t.Fatalf("Export: %v", err)
	}
	var objs []fixtureObject
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&objs); err != nil {
		t.Fatalf("export is not a fixture: %v\n%s", err, buf.String())
	}

	// Field names are turku_api/models.py's, minus the "id" primary key.
	wantFields := map[string][]string{
		"turku_api.auth": {"name", "secret_hash", "secret_type", "comment", "active", "date_added"},
		"turku_api.storage": {"name", "secret_hash", "comment", "ssh_ping_host", "ssh_ping_host_keys",
			"ssh_ping_port", "ssh_ping_user", "space_total", "space_available", "auth", "active", "published",
			"date_registered", "date_updated", "date_checked_in"},
		"turku_api.machine": {"uuid", "secret_hash", "environment_name", "service_name", "unit_name", "comment",
			"ssh_public_key", "auth", "storage", "active", "published", "date_registered", "date_updated",
			"date_checked_in"},
		"turku_api.source": {"name", "machine", "comment", "path", "filter", "exclude", "frequency", "retention",
			"bwlimit", "snapshot_mode", "preserve_hard_links", "shared_service", "large_rotating_files",
			"large_modifying_files", "active", "success", "published", "date_added", "date_updated",
			"date_last_backed_up", "date_next_backup"},
		"turku_api.backuplog": {"source", "date", "storage", "success", "date_begin", "date_end", "snapshot", "summary"},
	}
	var order []string
	pks := map[string]map[string]bool{}
	byModel := map[string][]fixtureObject{}
	for _, o := range objs {
		if len(order) == 0 || order[len(order)-1] != o.Model {
			order = append(order, o.Model)
		}
		if pks[o.Model] == nil {
			pks[o.Model] = map[string]bool{}
		}
		pks[o.Model][o.PK] = true
		byModel[o.Model] = append(byModel[o.Model], o)
		want, ok := wantFields[o.Model]
		if !ok {
			t.Errorf("unexpected model %q", o.Model)
			continue
		}
		var got []string
		for k := range o.Fields {
			got = append(got, k)
		}
		sort.Strings(got)
		want = append([]string(nil), want...)
		sort.Strings(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s fields (-want +got):\n%s", o.Model, diff)
		}
	}
	// Referenced objects come first, as loaddata on a strict database needs.
	wantOrder := []string{"turku_api.auth", "turku_api.storage", "turku_api.machine", "turku_api.source", "turku_api.backuplog"}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("model order (-want +got):\n%s", diff)
	}
	counts := map[string]int{}
	for m, list := range byModel {
		counts[m] = len(list)
	}
	wantCounts := map[string]int{"turku_api.auth": 2, "turku_api.storage": 1, "turku_api.machine": 1,
		"turku_api.source": 1, "turku_api.backuplog": 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("object counts (-want +got):\n%s", diff)
	}

	// Foreign keys point at exported objects.
	refs := []struct{ model, field, target string }{
		{"turku_api.storage", "auth", "turku_api.auth"},
		{"turku_api.machine", "auth", "turku_api.auth"},
		{"turku_api.machine", "storage", "turku_api.storage"},
		{"turku_api.source", "machine", "turku_api.machine"},
		{"turku_api.backuplog", "source", "turku_api.source"},
		{"turku_api.backuplog", "storage", "turku_api.storage"},
	}
	for _, r := range refs {
		for _, o := range byModel[r.model] {
			if pk, _ := o.Fields[r.field].(string); !pks[r.target][pk] {
				t.Errorf("%s %s: %s %q is not exported", r.model, o.PK, r.field, o.Fields[r.field])
			}
		}
	}

	now := "2026-11-25T14:30:45Z"
	machine := byModel["turku_api.machine"][0].Fields
	if h, _ := machine["secret_hash"].(string); !strings.HasPrefix(h, "argon2$argon2id$v=19$") {
		t.Errorf("secret_hash %q: want Django's argon2 format", h)
	}
	delete(machine, "secret_hash")
	delete(machine, "auth")
	delete(machine, "storage")
	wantMachine := map[string]any{"uuid": machineUUID, "environment_name": "prod", "service_name": "web",
		"unit_name": "web1", "comment": nil, "ssh_public_key": machineKey, "active": true, "published": true,
		"date_registered": now, "date_updated": now, "date_checked_in": now}
	if diff := cmp.Diff(wantMachine, machine); diff != "" {
		t.Errorf("machine fields (-want +got):\n%s", diff)
	}
	source := byModel["turku_api.source"][0].Fields
	if source["filter"] != `["- *.tmp", "merge common", "nospace"]` || source["exclude"] != `["cache/"]` {
		t.Errorf("source lists = %q, %q; want turku-api's JSON text", source["filter"], source["exclude"])
	}
	log := byModel["turku_api.backuplog"][0].Fields
	delete(log, "source")
	delete(log, "storage")
	wantLog := map[string]any{"date": now, "success": true, "date_begin": "2025-11-25T14:40:00Z",
		"date_end": "2025-11-25T14:40:01.500Z", "snapshot": "s1", "summary": nil}
	if diff := cmp.Diff(wantLog, log); diff != "" {
		t.Errorf("backup log fields (-want +got):\n%s", diff)
	}
	storage := byModel["turku_api.storage"][0].Fields
	if storage["ssh_ping_host_keys"] != `["`+hostKey+`"]` || storage["ssh_ping_port"] != 2222.0 {
		t.Errorf("storage = %v", storage)
	}
}

// TestExportFile: the file holds what Export writes, mode 0600 (every
// secret hash is in it), and replaces an older export whole.
func TestExportFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newRegistered(t)
	var want bytes.Buffer
	if err := f.c.Store().Export(ctx, &want); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "fixture.json")
	if err := os.WriteFile(path, []byte("an older, longer export"+strings.Repeat(".", want.Len())), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Store().ExportFile(ctx, path); err != nil {
		t.Fatalf("ExportFile: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("file holds %q, want what Export writes, %q", got, want.String())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the export alone", len(entries))
	}
}
