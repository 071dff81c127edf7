package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// knownKeys are the top-level keys read (not ignored), and the keys of
// one volume.
func knownKeys() (top, volume []string) {
	for _, s := range settings {
		if s.ignored == "" {
			top = append(top, s.key)
		}
	}
	for _, s := range volumeSettings {
		volume = append(volume, s.key)
	}
	return top, volume
}

// maxTypoDistance is how far (in edits) an unknown key may be from a known
// one to be taken for a typo of it: an error, since the setting it meant
// would silently keep its default (ssh_lisen: the listener on every
// interface).
const maxTypoDistance = 2

// checkKeys sorts the keys the files wrote: known; the old storage unit's
// keys this one does not use (named as ignored); close to a known key (an
// error naming it); anything else (a warning: old configurations carry
// keys of their own).
func (r *reader) checkKeys(c *Config) {
	paths := make([]string, 0, len(r.src.written))
	for p := range r.src.written {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	topKeys, volumeKeys := knownKeys()
	for _, p := range paths {
		file := r.src.written[p]
		known, key := topKeys, p
		if rest, ok := strings.CutPrefix(p, "volumes."); ok {
			i := strings.LastIndex(rest, ".")
			if i < 0 {
				continue // a volume's name
			}
			known, key = volumeKeys, rest[i+1:]
		} else if strings.Contains(p, ".") {
			continue // inside a mapping that is not ours
		}
		s, topLevel := lookup(key)
		topLevel = topLevel && !strings.Contains(p, ".")
		switch {
		case slices.Contains(known, key):
		case topLevel && s.ignored != "":
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s: %s: ignored: %s", file, p, s.ignored))
		default:
			if near := nearest(key, known); near != "" {
				r.problems = append(r.problems, fmt.Sprintf("%s: %s: unknown key; did you mean %s?", file, p, strings.TrimSuffix(p, key)+near))
				continue
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: unknown key, ignored", file, p))
		}
	}
}

// checkEnv does for TURKU_STORAGE_* variables what checkKeys does for
// the files' keys: one that names no key is an error when it is close to a
// key's variable, else a warning.
func (r *reader) checkEnv(c *Config) {
	var names []string
	for _, s := range settings {
		if s.envBound() {
			names = append(names, EnvName(s.key))
		}
	}
	var seen []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") && !slices.Contains(names, name) {
			seen = append(seen, name)
		}
	}
	slices.Sort(seen)
	for _, name := range seen {
		if near := nearest(name, names); near != "" {
			r.problems = append(r.problems, fmt.Sprintf("environment %s: unknown variable; did you mean %s?", name, near))
			continue
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("environment %s: names no configuration key, ignored", name))
	}
}

// nearest returns the known key closest to key within maxTypoDistance, or
// "".
func nearest(key string, known []string) string {
	best, bestD := "", maxTypoDistance+1
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
