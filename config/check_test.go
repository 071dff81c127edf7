package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteEffectiveAndOrigins(t *testing.T) {
	c := &Config{Name: "primary", Secret: "hunter2", Origins: map[string]string{"secret": "config.d/a.json", "name": "environment TURKU_STORAGE_NAME"}}
	var eff strings.Builder
	if err := c.WriteEffective(&eff); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(eff.String()), &m); err != nil || strings.Contains(eff.String(), "hunter2") || m["name"] != "primary" {
		t.Errorf("effective configuration %q (%v): want JSON naming primary, the secret masked", eff.String(), err)
	}
	var orig strings.Builder
	if err := c.WriteOrigins(&orig); err != nil {
		t.Fatal(err)
	}
	want := "KEY           SET BY\nname          environment TURKU_STORAGE_NAME\nsecret        config.d/a.json\n(other keys)  default\n"
	if orig.String() != want {
		t.Errorf("origins:\ngot  %q\nwant %q", orig.String(), want)
	}
}
