package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/apiclient"
	"github.com/turku-backup/turku-storage/registry"
)

// TestDrainingPublishedFalse: with published: false the unit says so in
// storage_update_config, and turku-api (the fake, which places machines
// by turku-api's rules) puts no new machine on it while it still lists
// the machines it has. Leaving the key out publishes the unit again, as
// turku-api reads a missing "published".
func TestDrainingPublishedFalse(t *testing.T) {
	t.Parallel()
	api, s := newAPISite(t, map[string]any{"published": false})
	api.AddStorage("primary", "S")
	api.AddStorage("secondary", "S2")
	const existing = "5d4ad5bb-2f7a-4f43-9d6e-7a1a3c4e0b21"
	api.AddMachine("primary", existing, apiclient.MachineInfo{UnitName: "web1", SSHPublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})

	if r := run(t, context.Background(), nil, "-c", s.dir, "update-config"); r.code != 0 {
		t.Fatalf("update-config: exit %d", r.code)
	}
	reqs := api.Requests("storage_update_config")
	if p, ok := reqs[len(reqs)-1].Body["storage"].(map[string]any)["published"]; !ok || p != false {
		t.Fatalf("storage_update_config sent published %v (present %v), want false", p, ok)
	}
	if api.Published("primary") {
		t.Fatal("the API still offers the unit for new machines")
	}
	c, err := registry.LoadCache(filepath.Join(s.varDir, registry.CacheFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Machines[existing]; !ok {
		t.Errorf("the machine already here is no longer listed: %v", c.Machines)
	}
	for i := range 20 {
		uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if got, err := api.PlaceMachine(uuid, apiclient.MachineInfo{UnitName: "new"}); err != nil || got != "secondary" {
			t.Fatalf("new machine %d placed on %q (%v), want secondary", i, got, err)
		}
	}

	// The key removed: turku-api takes a missing "published" as true.
	cfg := map[string]any{}
	path := filepath.Join(s.dir, "config.d", "10-main.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "published")
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, context.Background(), nil, "-c", s.dir, "update-config"); r.code != 0 {
		t.Fatalf("update-config: exit %d", r.code)
	}
	if !api.Published("primary") {
		t.Error("without the key the unit stays unpublished; turku-api publishes it again")
	}
}

// TestStatusShowsDraining: status says that the unit is not published,
// and its volumes take no new machine, as the reload in force set it; the
// key absent (turku-api then publishes the unit), it says nothing of it.
func TestStatusShowsDraining(t *testing.T) {
	t.Parallel()
	s := newSite(t, map[string]any{"published": false})
	d := startServe(t, s)
	table := func() string {
		t.Helper()
		var b strings.Builder
		if err := statusJSON(t, s).WriteText(&b, true); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if st := statusJSON(t, s); st.Published == nil || *st.Published {
		t.Fatalf("at start: status published %v, want false", st.Published)
	}
	out := table()
	if !strings.Contains(out, "; not published (draining): turku-api places no new machine here") ||
		!regexp.MustCompile(`(?m)^default\s.*\sno \(unit not published\)$`).MatchString(out) {
		t.Errorf("status table of a drained unit:\n%s", out)
	}

	if err := os.WriteFile(filepath.Join(s.dir, "config.d", "20-edit.json"), []byte(`{"published": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.hup <- struct{}{}
	d.log.WaitFor(t, "configuration reloaded", 1, waitLong)
	if st := statusJSON(t, s); st.Published == nil || !*st.Published {
		t.Errorf("after the reload: status published %v, want true", st.Published)
	}
	if out := table(); strings.Contains(out, "not published") || !regexp.MustCompile(`(?m)^default\s.*\sup to 80%$`).MatchString(out) {
		t.Errorf("status table of a published unit:\n%s", out)
	}
}
