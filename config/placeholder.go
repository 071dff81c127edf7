package config

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// placeholders are the values an example or a template leaves for the
// operator to replace, in placeholderForm. A string key set to one is
// refused: the storage unit would otherwise run with it, registering
// "CHANGE-ME" as its secret or advertising it as its host.
var placeholders = []string{"changeme", "replaceme", "fillmein", "placeholder", "todo", "fixme", "tbd", "xxx"}

// secretPlaceholders are refused in the secret keys only: words a
// secret, being guessable by anyone, must not be.
var secretPlaceholders = []string{"secret", "password", "passwd", "example", "yoursecret", "mysecret", "changeit"}

// placeholderForm is s as compared with the placeholders: lower case,
// without surrounding space and punctuation ("<CHANGE-ME>") and without
// the separators inside ("change_me", "Change Me"); a run of x of any
// length is "xxx".
func placeholderForm(s string) string {
	s = strings.TrimFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	if len(s) >= 3 && strings.Trim(s, "x") == "" {
		return "xxx"
	}
	return s
}

// isPlaceholder reports whether val, the value of key, is a placeholder.
func isPlaceholder(key, val string) bool {
	if val == "" {
		return false
	}
	f := placeholderForm(val)
	if slices.Contains(placeholders, f) {
		return true
	}
	s, _ := lookup(key)
	return s.secret && slices.Contains(secretPlaceholders, f)
}

// checkPlaceholder refuses a placeholder in key, once, naming the line of
// the file that set it when it can be found, and says what to put there
// instead. Other problems with the key are not reported after it.
func (r *reader) checkPlaceholder(key, val string) {
	if r.placeholders[key] || !isPlaceholder(key, val) {
		return
	}
	if r.placeholders == nil {
		r.placeholders = map[string]bool{}
	}
	r.placeholders[key] = true
	// The settings table says what to put there (settings.go).
	hint := "replace it with this site's value (docs/configuration.md)"
	if s, _ := lookup(key); s.hint != "" {
		hint = s.hint
	}
	where := r.src.where(key)
	if n := lineOf(filepath.Join(filepath.Dir(r.src.dir), where), key); n > 0 {
		where = fmt.Sprintf("%s:%d", where, n)
	}
	r.problems = append(r.problems, fmt.Sprintf("%s: %s: %q is a placeholder; %s", where, key, val, hint))
}

// lineOf returns the number of the first line of file that sets the
// top-level key, or 0: in YAML `key:` unindented, in JSON `"key":`
// anywhere (no nested key has a top-level key's name).
func lineOf(file, key string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	re := regexp.MustCompile(`^["']?` + regexp.QuoteMeta(key) + `["']?\s*:`)
	if strings.HasSuffix(file, ".json") {
		re = regexp.MustCompile(`"` + regexp.QuoteMeta(key) + `"\s*:`)
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if re.MatchString(sc.Text()) {
			return n
		}
	}
	return 0
}
