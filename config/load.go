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

// Error lists every problem found in a configuration.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return strings.Join(e.Problems, "\n")
}

// source is the merged raw configuration and, for every key path
// ("volumes.default.path"), the file that last set it.
type source struct {
	dir    string
	files  []string
	values map[string]any
	origin map[string]string
}

// Load reads dir/config.d, applies defaults and validates. Warnings (unknown
// keys, ignored OpenSSH-era keys) are returned in Config.Warnings.
func Load(dir string) (*Config, error) {
	return load(dir, SSHDHostKeyGlob)
}

// load is Load with the sshd host keys looked for in sshdGlob.
func load(dir, sshdGlob string) (*Config, error) {
	src, err := readDir(dir)
	if err != nil {
		return nil, err
	}
	v := viper.New()
	setDefaults(v)
	// Viper folds keys to lower case; values stay as decoded, so names
	// under volumes are read back from src.values, not from viper.
	// MergeConfigMap lower-cases the maps it is given in place: hand it a copy.
	if err := v.MergeConfigMap(normalize(src.values).(map[string]any)); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.d"), err)
	}
	return build(v, src, sshdGlob)
}

func readDir(dir string) (*source, error) {
	cd := filepath.Join(dir, "config.d")
	entries, err := os.ReadDir(cd)
	if err != nil {
		return nil, fmt.Errorf("read configuration directory: %w", err)
	}
	src := &source{dir: cd, values: map[string]any{}, origin: map[string]string{}}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") && !strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".yml") {
			continue
		}
		if strings.HasPrefix(n, ".") {
			continue
		}
		info, err := os.Stat(filepath.Join(cd, n))
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
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
		merge(src.values, m, "", label, src.origin)
	}
	return src, nil
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

// normalize turns YAML's map[any]any-free output and JSON numbers into one
// shape: map[string]any, []any, string, bool, json.Number-like int64/float64.
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

// merge deep-merges m into dst like the old dict_merge: nested mappings
// merge, everything else (lists included) is replaced by the later file.
func merge(dst, m map[string]any, prefix, file string, origin map[string]string) {
	for k, v := range m {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			if cur, ok := dst[k].(map[string]any); ok {
				origin[path] = file
				merge(cur, sub, path, file, origin)
				continue
			}
			fresh := map[string]any{}
			dst[k] = fresh
			for p := range origin {
				if strings.HasPrefix(p, path+".") {
					delete(origin, p)
				}
			}
			origin[path] = file
			merge(fresh, sub, path, file, origin)
			continue
		}
		dst[k] = v
		origin[path] = file
	}
}

// where names the file that set key, or the directory when no file did.
func (s *source) where(key string) string {
	if i := strings.IndexByte(key, '['); i >= 0 {
		key = key[:i]
	}
	for k := key; k != ""; {
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
