package config

// Setting documents a key, or keys that go together, as the reference
// (docs/configuration.md) and turku-storage.conf(5) show it.
type Setting struct {
	// Keys are the keys of the row: one, or several documented together.
	Keys []string
	// Default, Reload and Doc are Markdown. Reload is ReloadApplies,
	// ReloadRestart or "" for a key accepted and ignored.
	Default, Reload, Doc string
}

// The reload classes of a Setting.
const (
	// ReloadApplies: a SIGHUP applies the new value.
	ReloadApplies = "applied"
	// ReloadRestart: the value is bound at start; a SIGHUP names the key
	// in the log and keeps the running value.
	ReloadRestart = "restart"
)

// The reference (docs/configuration.md) has its tables of keys, as
// Reference makes them, between these lines.
const (
	ReferenceBegin = "<!-- The key tables below are made from config/settings.go by `go generate ./config`: edit the keys there. -->"
	ReferenceEnd   = "<!-- End of the key tables made from config/settings.go. -->"
)

// Table is one table of keys of the reference.
type Table struct {
	Title    string
	Settings []Setting
}

// Reference returns the reference's tables of keys: those the old
// storage unit read too, those new in this implementation, and a
// volume's. Consecutive keys with the same default, reload class and doc
// make one row.
func Reference() []Table {
	old := Table{Title: "Keys of the old storage unit"}
	added := Table{Title: "Keys new in this implementation"}
	for _, s := range settings {
		def := s.docDef
		if def == "" && s.def != "" {
			def = "`" + s.def + "`"
		}
		if def == "" {
			def = "none"
		}
		reload := ReloadApplies
		switch {
		case s.ignored != "":
			reload, def = "", "—"
		case s.restart:
			reload = ReloadRestart
		}
		t := &added
		if s.old {
			t = &old
		}
		t.add(Setting{Keys: []string{s.key}, Default: def, Reload: reload, Doc: s.doc})
	}
	vols := Table{Title: "Keys of each volume (`volumes.NAME.KEY`)"}
	for _, s := range volumeSettings {
		def := "none"
		switch {
		case s.required:
			def = "required"
		case s.from != "":
			def = "`" + s.from + "`"
		case s.def != "":
			def = "`" + s.def + "`"
		}
		vols.add(Setting{Keys: []string{"volumes.NAME." + s.key}, Default: def, Reload: ReloadApplies, Doc: s.doc})
	}
	return []Table{old, added, vols}
}

// add appends s to t, into the last row when that says the same.
func (t *Table) add(s Setting) {
	if n := len(t.Settings); n > 0 {
		last := &t.Settings[n-1]
		if last.Default == s.Default && last.Reload == s.Reload && last.Doc == s.Doc {
			last.Keys = append(last.Keys, s.Keys...)
			return
		}
	}
	t.Settings = append(t.Settings, s)
}
