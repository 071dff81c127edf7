package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// What the settings table (settings.go) gives, applied generically: the
// defaults, the typed reading by field type, RestartNeeded, the JSON
// `config check` prints and the masking of secrets.

// setDefaults declares the defaults of the settings table. Derived ones
// are set in build: ssh_listen (":" + ssh_ping_port), ssh_host_key_files
// (var_dir's ssh_host_ed25519_key, or the private halves of the advertised
// keys), lock_dir (var_dir's lock), ssh_ping_host (this host's name) and
// the volumes' (the top-level keys named by volumeSetting.from).
func setDefaults(v *viper.Viper) {
	for _, s := range settings {
		if s.def == "" || s.field == nil {
			continue
		}
		if val, err := defaultValue(s.field(&Config{}), s.def); err == nil {
			v.SetDefault(s.key, val)
		} // else TestSettingsDefaults fails
	}
}

// defaultValue is def as a file would give it for the field p points at:
// integers as int64, booleans as bool, everything else as the string,
// which the field's reader parses.
func defaultValue(p any, def string) (any, error) {
	switch p.(type) {
	case *int, *int64:
		return strconv.ParseInt(def, 10, 64)
	case *bool:
		return strconv.ParseBool(def)
	}
	return def, nil
}

// readSettings reads every setting that is not custom into c, by the type
// of its field.
func (r *reader) readSettings(c *Config) {
	for _, s := range settings {
		if s.field != nil && !s.custom {
			r.read(s, s.field(c))
		}
	}
}

// read reads s into the field p points at and reports whether its type
// has a reader here; a setting of another type is custom, read in build.
func (r *reader) read(s setting, p any) bool {
	switch p := p.(type) {
	case *string:
		if s.required {
			*p = r.required(s.key)
		} else {
			*p = r.str(s.key)
		}
	case *bool:
		*p = r.boolean(s.key)
	case **bool: // nil when the key is absent
		if r.v.IsSet(s.key) {
			b := r.boolean(s.key)
			*p = &b
		}
	case *int:
		*p = r.integer(s.key, s.min, s.max)
	case *int64:
		*p = int64(r.integer(s.key, s.min, s.max))
	case *time.Duration: // 0 when absent and without a default
		if s.def != "" || r.v.IsSet(s.key) {
			*p = r.duration(s.key)
		}
	case *[]string:
		*p = r.strings(s.key)
	case *MaxStartups:
		*p = r.maxStartups(s.key)
	case *[]netip.Prefix:
		*p = r.networks(s.key)
	case *PortRange:
		*p = r.portRange(s.key)
	default:
		return false
	}
	return true
}

// RestartNeeded lists the settings that differ between a and b and are
// bound at start (listeners, keys, identity, logging: those marked
// restart in settings.go): a reload keeps their running values, and only
// a restart applies them.
func RestartNeeded(a, b *Config) []string {
	var out []string
	for _, s := range settings {
		if s.restart && s.field != nil && !sameValue(s.field(a), s.field(b)) {
			out = append(out, s.key)
		}
	}
	return out
}

// sameValue reports whether the values p and q point at are equal; an
// empty list equals an absent one.
func sameValue(p, q any) bool {
	x, y := reflect.ValueOf(p).Elem(), reflect.ValueOf(q).Elem()
	if x.Kind() == reflect.Slice && x.Len() == 0 && y.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(x.Interface(), y.Interface())
}

// MarshalJSON writes every setting with a field, by key, in the order of
// the settings table. Durations are Go duration strings ("30s"), a form
// config.d reads back unchanged: as bare numbers they would be
// nanoseconds, which config.d would read as seconds. A zero duration
// (a key without a default, absent) is left out: config.d refuses 0.
func (c Config) MarshalJSON() ([]byte, error) {
	var fields []jsonField
	for _, s := range settings {
		if s.field != nil {
			fields = append(fields, jsonField{s.key, s.field(&c)})
		}
	}
	return marshalObject(fields)
}

// MarshalJSON writes the volume's name and settings, like Config's.
func (v Volume) MarshalJSON() ([]byte, error) {
	fields := []jsonField{{"name", &v.Name}}
	for _, s := range volumeSettings {
		fields = append(fields, jsonField{s.key, s.field(&v)})
	}
	return marshalObject(fields)
}

// jsonField is one key of an object and a pointer to its value.
type jsonField struct {
	key string
	ptr any
}

// marshalObject writes fields as one JSON object, in order.
func marshalObject(fields []jsonField) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for _, f := range fields {
		var val any = reflect.ValueOf(f.ptr).Elem().Interface()
		if d, ok := f.ptr.(*time.Duration); ok {
			if *d == 0 {
				continue
			}
			val = d.String()
		}
		data, err := json.Marshal(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.key))
		b.WriteByte(':')
		b.Write(data)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Redacted returns a copy with every secret (settings marked secret)
// replaced, for printing.
func (c *Config) Redacted() *Config {
	out := *c
	for _, s := range settings {
		if !s.secret || s.field == nil {
			continue
		}
		if p, ok := s.field(&out).(*string); ok && *p != "" {
			*p = "********"
		}
	}
	return &out
}

// networks reads a list of networks; a bare address is a network of one.
func (r *reader) networks(key string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range r.strings(key) {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				r.fail(fmt.Sprintf("%s[%d]", key, i), "want a network like 192.0.2.0/24 or 2001:db8::/48, got %q", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}
