package config

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the key tables of docs/configuration.md from the settings table")

// referencePath is the configuration reference, relative to this package.
const referencePath = "../docs/configuration.md"

// referenceMarkdown renders Reference() as the reference's key tables.
func referenceMarkdown() string {
	var b strings.Builder
	b.WriteString(ReferenceBegin + "\n")
	for _, t := range Reference() {
		fmt.Fprintf(&b, "\n## %s\n\n| key | default | on reload | meaning |\n|---|---|---|---|\n", t.Title)
		for _, s := range t.Settings {
			keys := make([]string, len(s.Keys))
			for i, k := range s.Keys {
				keys[i] = "`" + k + "`"
			}
			reload := s.Reload
			if reload == "" {
				reload = "—"
			}
			cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.Join(keys, ", "), cell(s.Default), reload, cell(s.Doc))
		}
	}
	b.WriteString("\n" + ReferenceEnd + "\n")
	return b.String()
}

// documentedRow matches a row of a table of keys: its keys, default and
// meaning (the reload class, when the row has one, is left out).
var documentedRow = regexp.MustCompile("^\\| (`[^|]+`) \\| ([^|]*) \\|(?: [^|]* \\|)? (.*) \\|$")

// TestConfigurationReference: docs/configuration.md's key tables are
// exactly what the settings table (settings.go) makes: every key with
// its default and reload class, and no key the settings do not declare.
// With -update (go generate ./config) it rewrites them.
func TestConfigurationReference(t *testing.T) {
	data, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	// A key documented by hand (a row added on another branch, say) is
	// named with the setting to declare in its place.
	for _, line := range strings.Split(doc, "\n") {
		m := documentedRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, k := range strings.Split(m[1], ", ") {
			k = strings.Trim(k, "`")
			if declared(k) {
				continue
			}
			t.Errorf("%s documents %s, which config/settings.go does not declare. Declare it there instead:\n%s\n"+
				"then run go generate ./config (it rewrites the tables of %s)", referencePath, k, declaration(k, m[2], m[3]), referencePath)
		}
	}
	want := referenceMarkdown()
	begin, end := strings.Index(doc, ReferenceBegin), strings.Index(doc, ReferenceEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the lines %q and %q around the key tables", referencePath, ReferenceBegin, ReferenceEnd)
	}
	got := doc[begin : end+len(ReferenceEnd)+1]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(referencePath, []byte(doc[:begin]+want+doc[end+len(ReferenceEnd)+1:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the key tables of %s are not what config/settings.go makes: run go generate ./config "+
		"(go test ./config -run TestConfigurationReference -update) and commit the result (-in the file +made):\n%s",
		referencePath, cmp.Diff(got, want))
}

// declared reports whether key, as the reference names it, is declared.
func declared(key string) bool {
	if k, ok := strings.CutPrefix(key, "volumes.NAME."); ok {
		for _, s := range volumeSettings {
			if s.key == k {
				return true
			}
		}
		return false
	}
	_, ok := lookup(key)
	return ok
}

// declaration is the settings entry to add for key, documented with the
// default def and the meaning doc.
func declaration(key, def, doc string) string {
	def = strings.TrimSpace(def)
	defField := fmt.Sprintf("docDef: %q", def)
	if lit, ok := strings.CutPrefix(def, "`"); ok && strings.Count(def, "`") == 2 && strings.HasSuffix(def, "`") {
		defField = fmt.Sprintf("def: %q", strings.TrimSuffix(lit, "`"))
	} else if def == "none" || def == "" {
		defField = `def: ""`
	}
	if k, ok := strings.CutPrefix(key, "volumes.NAME."); ok {
		return fmt.Sprintf("\t{key: %q, field: func(v *Volume) any { return &v.FIELD }, %s, doc: %q}, // in volumeSettings", k, defField, doc)
	}
	field := "FIELD"
	for _, f := range fieldsOf(reflect.TypeFor[Config](), 0) {
		if snake(f) == key {
			field = f.Name
		}
	}
	return fmt.Sprintf("\t{key: %q, field: func(c *Config) any { return &c.%s }, %s, restart: true /* false if a reload applies it */, doc: %q},",
		key, field, defField, doc)
}
