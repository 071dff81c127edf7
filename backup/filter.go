package backup

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// maxRuleLen keeps a rule below rsync's MAXPATHLEN limit, beyond which it
// silently discards the rule.
const maxRuleLen = 4000

// maxRules bounds the filter file.
const maxRules = 10000

// ruleLongNames are rsync's long rule names and their one-character forms
// (rsync(1), FILTER RULES IN DEPTH). rsync recognises a long name only when
// it is followed by whitespace, '_', ',' or the end of the rule; any other
// rule starting with one of these letters is a syntax error.
var ruleLongNames = map[byte]struct {
	name string
	ch   byte
}{
	'c': {"clear", '!'},
	'd': {"dir-merge", ':'},
	'e': {"exclude", '-'},
	'h': {"hide", 'H'},
	'i': {"include", '+'},
	'm': {"merge", '.'},
	'p': {"protect", 'P'},
	'r': {"risk", 'R'},
	's': {"show", 'S'},
}

// ruleModifiers are the modifiers rsync accepts after each rule that does
// not read a file. 'C' is missing on purpose: it inserts the global
// CVS-exclude rules, which rsync reads from $HOME/.cvsignore and
// $CVSIGNORE on the storage unit. Side modifiers (s, r) are invalid after
// a rule that names its side.
var ruleModifiers = map[byte]string{
	'+': "/!psrx",
	'-': "/!psrx",
	'H': "/!px",
	'S': "/!px",
	'P': "/!px",
	'R': "/!px",
}

// checkFilterRule returns an error if rule must not reach rsync: anything
// that makes rsync read a file on the storage unit (merge ".", dir-merge
// ":", in long or short form, with any modifiers; the 'C' modifier), any
// rule rsync would not parse, and anything containing a line break or NUL,
// which would split it into several rules in the merge file. It parses
// the rule prefix the way rsync's parse_rule_tok does, for a line of a
// merge file read without modifiers (our "--filter=merge FILE").
func checkFilterRule(rule string) error {
	if strings.ContainsAny(rule, "\n\r\x00") {
		return fmt.Errorf("filter rule %q contains a line break or NUL", rule)
	}
	if rule == "" || rule[0] == '#' || rule[0] == ';' {
		return nil // rsync skips empty lines and comments in a merge file
	}
	if len(rule) > maxRuleLen {
		return fmt.Errorf("filter rule %.40q... is longer than %d bytes", rule, maxRuleLen)
	}
	ch, rest := rule[0], rule[1:]
	if ln, ok := ruleLongNames[rule[0]]; ok {
		after, found := strings.CutPrefix(rule, ln.name)
		if !found || (after != "" && !strings.ContainsRune(" \t\n\v\f\r_,", rune(after[0]))) {
			return fmt.Errorf("filter rule %q: unknown rule", rule)
		}
		ch, rest = ln.ch, after
	}
	switch ch {
	case '.', ':':
		return fmt.Errorf("filter rule %q: merge rules read files on the storage unit and are not allowed", rule)
	case '!':
		if rest != "" {
			return fmt.Errorf("filter rule %q: the clear rule takes no argument", rule)
		}
		return nil
	}
	allowed, ok := ruleModifiers[ch]
	if !ok {
		return fmt.Errorf("filter rule %q: unknown rule", rule)
	}
	rest = strings.TrimPrefix(rest, ",")
	mods, pattern := rest, ""
	if i := strings.IndexAny(rest, " _"); i >= 0 {
		mods, pattern = rest[:i], rest[i+1:]
	}
	for i := 0; i < len(mods); i++ {
		switch {
		case mods[i] == 'C':
			return fmt.Errorf("filter rule %q: the C modifier reads files on the storage unit and is not allowed", rule)
		case !strings.ContainsRune(allowed, rune(mods[i])):
			return fmt.Errorf("filter rule %q: invalid modifier %q", rule, mods[i])
		}
	}
	if pattern == "" {
		return fmt.Errorf("filter rule %q has no pattern", rule)
	}
	return nil
}

// filterRules turns a source's filter and exclude lists into the lines of
// the merge file: each filter as is, each exclude X as "- X". The first
// bad entry fails the whole source; dropping it silently could transfer
// what the agent meant to exclude.
func filterRules(filters, excludes []string) ([]string, error) {
	if len(filters)+len(excludes) > maxRules {
		return nil, fmt.Errorf("more than %d filter rules", maxRules)
	}
	var out []string
	for _, f := range filters {
		if err := checkFilterRule(f); err != nil {
			return nil, err
		}
		if f != "" {
			out = append(out, f)
		}
	}
	for _, x := range excludes {
		if x == "" {
			return nil, fmt.Errorf("empty exclude pattern")
		}
		rule := "- " + x
		if err := checkFilterRule(rule); err != nil {
			return nil, fmt.Errorf("exclude %q: %w", x, err)
		}
		out = append(out, rule)
	}
	return out, nil
}

// writeFilterFile writes rules to a new temporary file and returns its
// path; the caller removes it.
func writeFilterFile(rules []string) (string, error) {
	f, err := os.CreateTemp("", "turku-storage-filter-*")
	if err != nil {
		return "", fmt.Errorf("create filter file: %w", err)
	}
	_, werr := f.WriteString(strings.Join(rules, "\n") + "\n")
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write filter file: %w", errors.Join(werr, cerr))
	}
	return f.Name(), nil
}

var bwlimitRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?([bBkKmMgGtTpP]([iI]?[bB])?)?$`)

// checkBwlimit returns an error unless v is an rsync --bwlimit SIZE
// ("1000", "1.5m", "100KiB").
func checkBwlimit(v string) error {
	if v != "" && !bwlimitRE.MatchString(v) {
		return fmt.Errorf("bwlimit %q is not a size rsync accepts", v)
	}
	return nil
}
