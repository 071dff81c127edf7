package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// DefaultDir is where the old storage unit kept its configuration.
const DefaultDir = "/etc/turku-storage"

// EnvPrefix starts the environment variables that override a key:
// TURKU_STORAGE_SSH_LISTEN overrides ssh_listen.
const EnvPrefix = "TURKU_STORAGE"

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return strings.Join(e.Problems, "\n")
}

// source records where each setting came from: for every key path in
// lower case ("volumes.default.path"), the file or environment variable
// that last set it. viper holds the values; it folds keys to lower case,
// so the names as written (volume names keep their case) are kept here.
type source struct {
	dir    string
	files  []string
	origin map[string]string
	// isMap is whether the last file to set a path set a mapping there.
	isMap map[string]bool
	// written are the key paths as the files spell them, with the file
	// that last set each.
	written map[string]string
	// volumeNames maps a volume's name in lower case to its name as
	// written.
	volumeNames map[string]string
	problems    []string
	// skipped are the files of config.d not read for their extension,
	// as warnings; examples those named *.example (the package ships
	// one), which are only noted.
	skipped, examples []string
}

// Load reads dir/config.d, applies defaults and environment overrides,
// and validates. Warnings (unknown keys) are returned in Config.Warnings,
// keys of the old storage unit that are no longer used in Config.Ignored.
func Load(dir string) (*Config, error) {
	return load(dir, SSHDHostKeyGlob)
}

// LoadBehindOpenSSH is Load for the forced-command mode (`ping`), where
// the system's sshd, not this program, serves the host keys: the
// advertised keys are not matched with ssh_host_key_files.
func LoadBehindOpenSSH(dir string) (*Config, error) {
	return load(dir, "")
}

// load is Load with the sshd host keys looked for in sshdGlob; "" leaves
// the host keys unchecked.
func load(dir, sshdGlob string) (*Config, error) {
	v := viper.New()
	setDefaults(v)
	src, err := readDir(v, dir)
	if err != nil {
		return nil, err
	}
	bindEnv(v, src)
	c, err := build(v, src, sshdGlob)
	if err != nil {
		return nil, err
	}
	c.Warnings = append(src.skipped, c.Warnings...)
	c.Ignored = append(src.examples, c.Ignored...)
	return c, nil
}

// readDir merges config.d's files into v in file-name order, like the old
// dict_merge: nested mappings merge, everything else (lists included) is
// replaced by the later file.
func readDir(v *viper.Viper, dir string) (*source, error) {
	cd := filepath.Join(dir, "config.d")
	entries, err := os.ReadDir(cd)
	if err != nil {
		return nil, fmt.Errorf("read configuration directory: %w", err)
	}
	src := &source{dir: cd, origin: map[string]string{}, isMap: map[string]bool{},
		written: map[string]string{}, volumeNames: map[string]string{}}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			continue // hidden: editors' swap files and the like
		}
		info, err := os.Stat(filepath.Join(cd, n))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".yml") {
			// A file the operator may think is read: 10-storage.yaml.bak,
			// 10-storage.yaml.dpkg-dist, 20-volumes.conf.
			msg := fmt.Sprintf("%s: not read: only *.json, *.yaml and *.yml files are", filepath.Join("config.d", n))
			if strings.HasSuffix(n, ".example") {
				src.examples = append(src.examples, msg)
			} else {
				src.skipped = append(src.skipped, msg)
			}
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		if others := slices.Concat(src.examples, src.skipped); len(others) > 0 {
			return nil, fmt.Errorf("%s: no *.json, *.yaml or *.yml files (%s)", cd, strings.Join(others, "; "))
		}
		return nil, fmt.Errorf("%s: no *.json, *.yaml or *.yml files", cd)
	}
	for _, n := range names {
		path := filepath.Join(cd, n)
		label := filepath.Join("config.d", n)
		m, err := decodeFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		src.files = append(src.files, label)
		src.record(m, "", label)
		// MergeConfigMap folds the keys of the maps it is given in place:
		// hand it a copy.
		if err := v.MergeConfigMap(normalize(m).(map[string]any)); err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
	}
	if len(src.problems) > 0 {
		return nil, &Error{Problems: src.problems}
	}
	return src, nil
}

// record notes where the settings of one file's mapping m come from.
// viper leaves a mapping in place when a later file puts something else
// at its key, where the old code replaced it: that is refused here.
func (s *source) record(m map[string]any, prefix, file string) {
	for _, k := range sortedKeys(m) {
		val := m[k]
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		lower := strings.ToLower(path)
		sub, isMap := val.(map[string]any)
		if s.isMap[lower] && !isMap {
			s.problems = append(s.problems, fmt.Sprintf("%s: %s: want a mapping, as %s set it, got %s", file, path, s.origin[lower], typeName(val)))
			continue
		}
		if prefix == "volumes" {
			if prev, ok := s.volumeNames[strings.ToLower(k)]; ok && prev != k {
				s.problems = append(s.problems, fmt.Sprintf("%s: %s: the volume names %q and %q differ only in case", file, path, prev, k))
				continue
			}
			s.volumeNames[strings.ToLower(k)] = k
		}
		s.origin[lower] = file
		s.isMap[lower] = isMap
		s.written[path] = file
		if isMap {
			s.record(sub, path, file)
		}
	}
}

// bindEnv lets TURKU_STORAGE_KEY override key, for every top-level key
// read but volumes (a mapping has no one-variable form).
func bindEnv(v *viper.Viper, src *source) {
	v.SetEnvPrefix(EnvPrefix)
	for _, s := range settings {
		if !s.envBound() {
			continue
		}
		k := s.key
		name := EnvName(k)
		_ = v.BindEnv(k, name) // fails only without a key
		if val, ok := os.LookupEnv(name); ok && val != "" {
			src.origin[k] = "environment " + name
		}
	}
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(key)
}

// fromEnv reports whether key's value comes from the environment: a
// string to be read as the key's type.
func (s *source) fromEnv(key string) bool {
	return strings.HasPrefix(s.origin[strings.ToLower(key)], "environment ")
}

func decodeFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw any
	if strings.HasSuffix(path, ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("invalid JSON: data after the top-level object")
		}
	} else {
		if err := yaml.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
	}
	if raw == nil {
		return map[string]any{}, nil // an empty file adds nothing
	}
	m, ok := normalize(raw).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level must be a mapping, got %s", typeName(raw))
	}
	return m, nil
}

// normalize turns YAML's and JSON's output into one shape, a copy:
// map[string]any, []any, string, bool, int64 or float64 (JSON numbers are
// decoded as written, so 1.5 stays a float and "an integer" can be told
// apart).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[k] = normalize(val)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[fmt.Sprint(k)] = normalize(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = normalize(val)
		}
		return out
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case int:
		return int64(t)
	case uint64:
		return int64(t)
	}
	return v
}

// where names the file or environment variable that set key, or the
// directory when none did.
func (s *source) where(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	for k := strings.ToLower(key); k != ""; {
		if f, ok := s.origin[k]; ok {
			return f
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return "config.d"
}

// Origins returns, for every top-level key set by a file or the
// environment, where it was set (the last file to set it wins).
func (s *source) origins() map[string]string {
	out := map[string]string{}
	for k, f := range s.origin {
		if !strings.Contains(k, ".") {
			out[k] = f
		}
	}
	return out
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
