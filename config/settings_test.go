package config

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/viper"
)

// structField is a field of a struct, those of embedded structs
// included, at its offset from the struct's start.
type structField struct {
	reflect.StructField
	at uintptr
}

// fieldsOf lists t's fields, an embedded struct's in its place.
func fieldsOf(t reflect.Type, at uintptr) []structField {
	var out []structField
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, fieldsOf(f.Type, at+f.Offset)...)
			continue
		}
		out = append(out, structField{f, at + f.Offset})
	}
	return out
}

// fieldOf returns the name of the field of *base that p points at, or
// "".
func fieldOf(base, p any) string {
	b := reflect.ValueOf(base)
	at := reflect.ValueOf(p).Pointer()
	for _, f := range fieldsOf(b.Elem().Type(), 0) {
		if b.Pointer()+f.at == at && reflect.TypeOf(p).Elem() == f.Type {
			return f.Name
		}
	}
	return ""
}

// snake is a field's name as a key would spell it, for the messages:
// MaxConcurrentBackups -> max_concurrent_backups. A json tag wins.
func snake(f structField) string {
	if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
		return tag
	}
	var b strings.Builder
	for i, r := range f.Name {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && !(f.Name[i-1] >= 'A' && f.Name[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestSettingsDeclared: every field of Config and Volume is the field of
// exactly one setting, or declared as no setting's; every key is declared
// once. A field added without its setting fails here, saying what to add.
func TestSettingsDeclared(t *testing.T) {
	t.Parallel()
	c := &Config{}
	owner := map[string]string{} // field -> key
	keys := map[string]bool{}
	for _, s := range settings {
		if keys[s.key] {
			t.Errorf("settings: %s is declared twice", s.key)
		}
		keys[s.key] = true
		if s.field == nil {
			if !s.custom && s.ignored == "" {
				t.Errorf("settings: %s has no field; give it one, or mark it custom and read it in build", s.key)
			}
			continue
		}
		f := fieldOf(c, s.field(c))
		if f == "" {
			t.Errorf("settings: %s: field does not point at a field of Config", s.key)
			continue
		}
		if prev, ok := owner[f]; ok {
			t.Errorf("settings: %s and %s share the field Config.%s", prev, s.key, f)
		}
		owner[f] = s.key
	}
	for _, f := range fieldsOf(reflect.TypeFor[Config](), 0) {
		if _, ok := owner[f.Name]; ok || slices.Contains(notSettings, f.Name) {
			continue
		}
		t.Errorf("Config.%[1]s is no setting's field. Add its setting to settings in config/settings.go, e.g.\n"+
			"\t{key: %[2]q, field: func(c *Config) any { return &c.%[1]s }, def: \"DEFAULT\", restart: true, doc: \"WHAT IT MEANS\"},\n"+
			"(def as config.d spells it, or docDef for a derived default; restart: true when a reload cannot apply it; "+
			"min/max for an integer; custom: true when build reads it), then run go generate ./config; "+
			"or, if no key sets it, add %[1]q to notSettings", f.Name, snake(f))
	}

	v := &Volume{}
	vowner := map[string]bool{"Name": true}
	for _, s := range volumeSettings {
		f := fieldOf(v, s.field(v))
		if f == "" || vowner[f] {
			t.Errorf("volumeSettings: %s: field is not a field of Volume of its own", s.key)
		}
		vowner[f] = true
		if s.from != "" {
			top, ok := lookup(s.from)
			if !ok || top.field == nil || reflect.TypeOf(top.field(c)) != reflect.TypeOf(s.field(v)) {
				t.Errorf("volumeSettings: %s takes its default from %s, not a top-level setting of its type", s.key, s.from)
			}
		}
	}
	for _, f := range fieldsOf(reflect.TypeFor[Volume](), 0) {
		if !vowner[f.Name] {
			t.Errorf("Volume.%[1]s is no volume setting's field. Add to volumeSettings in config/settings.go, e.g.\n"+
				"\t{key: %[2]q, field: func(v *Volume) any { return &v.%[1]s }, def: \"DEFAULT\", doc: \"WHAT IT MEANS\"},\n"+
				"then run go generate ./config", f.Name, snake(f))
		}
	}
}

// TestSettingsReadable: every setting not custom has a reader for its
// field's type, and every volume setting too.
func TestSettingsReadable(t *testing.T) {
	t.Parallel()
	r := &reader{v: viper.New(), src: &source{origin: map[string]string{}}}
	for _, s := range settings {
		if s.field != nil && !s.custom && !r.read(s, s.field(&Config{})) {
			t.Errorf("%s: no reader for a %T in reader.read (read.go): add one, or mark it custom and read it in build", s.key, s.field(&Config{}))
		}
		if s.secret {
			if _, ok := s.field(&Config{}).(*string); !ok {
				t.Errorf("%s: a secret must be a string to be masked", s.key)
			}
		}
	}
	for _, s := range volumeSettings {
		switch s.field(&Volume{}).(type) {
		case *string, *bool, *int:
		default:
			t.Errorf("volumes.NAME.%s: no reader for a %T in reader.volumeValue", s.key, s.field(&Volume{}))
		}
	}
}

// TestSettingsDefaults: a default means what writing it in config.d
// does; the volumes' defaults too.
func TestSettingsDefaults(t *testing.T) {
	t.Parallel()
	const base = `"name": "n", "secret": "s", "volumes": {"v": {"path": "/v"}}`
	explicit := map[string]any{}
	for _, s := range settings {
		if s.def == "" {
			continue
		}
		val, err := defaultValue(s.field(&Config{}), s.def)
		if err != nil {
			t.Errorf("%s: default %q: %v", s.key, s.def, err)
		}
		explicit[s.key] = val
	}
	vol := map[string]any{"path": "/v"}
	for _, s := range volumeSettings {
		if s.def != "" {
			val, err := defaultValue(s.field(&Volume{}), s.def)
			if err != nil {
				t.Errorf("volumes.NAME.%s: default %q: %v", s.key, s.def, err)
			}
			vol[s.key] = val
		}
	}
	explicit["volumes"] = map[string]any{"v": vol}
	data, err := json.Marshal(explicit)
	if err != nil {
		t.Fatal(err)
	}
	defaulted, err := Load(writeConfig(t, map[string]string{"a.json": "{" + base + "}"}))
	if err != nil {
		t.Fatal(err)
	}
	written, err := Load(writeConfig(t, map[string]string{"a.json": "{" + base + "}", "b.json": string(data)}))
	if err != nil {
		t.Fatalf("the defaults written out: %v", err)
	}
	if diff := cmp.Diff(defaulted, written, cmpIgnore("Dir", "Origins", "Files", "Location")); diff != "" {
		t.Errorf("defaults differ from the same values written in config.d (-default +written):\n%s", diff)
	}
}

// TestRestartNeededFollowsSettings: changing any one setting's value is
// named by RestartNeeded exactly when the table marks it restart.
func TestRestartNeededFollowsSettings(t *testing.T) {
	t.Parallel()
	for _, s := range settings {
		if s.field == nil {
			continue
		}
		a, b := &Config{}, &Config{}
		change(t, s.key, reflect.ValueOf(s.field(b)).Elem())
		var want []string
		if s.restart {
			want = []string{s.key}
		}
		if got := RestartNeeded(a, b); !slices.Equal(got, want) {
			t.Errorf("changing %s: RestartNeeded says %v, want %v", s.key, got, want)
		}
	}
}

// change sets v, a zero value, to something else.
func change(t *testing.T, key string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Struct:
		if v.NumField() == 0 || !v.Field(0).CanSet() {
			t.Fatalf("%s: cannot change a %s", key, v.Type())
		}
		change(t, key, v.Field(0))
	default:
		t.Fatalf("%s: cannot change a %s", key, v.Type())
	}
}

// TestRedactedFollowsSettings: every secret is masked, nothing else.
func TestRedactedFollowsSettings(t *testing.T) {
	t.Parallel()
	c := &Config{}
	for _, s := range settings {
		if p, ok := s.field0(c).(*string); ok {
			*p = "plain"
		}
	}
	r := c.Redacted()
	for _, s := range settings {
		p, ok := s.field0(r).(*string)
		if !ok {
			continue
		}
		if want := map[bool]string{true: "********", false: "plain"}[s.secret]; *p != want {
			t.Errorf("Redacted: %s is %q, want %q", s.key, *p, want)
		}
	}
}

// field0 is s.field(c), or nil for a setting without a field.
func (s setting) field0(c *Config) any {
	if s.field == nil {
		return nil
	}
	return s.field(c)
}
