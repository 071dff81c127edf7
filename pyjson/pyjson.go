// Package pyjson writes JSON strings byte for byte as Python's json module
// does with ensure_ascii=True, the default of the old storage unit and of
// turku-api. Files and database values they compare or re-read stay
// identical whichever implementation wrote them.
package pyjson

import (
	"fmt"
	"strings"
	"unicode/utf16"
)

// Quote returns s as a JSON string literal like Python's json.dumps:
// the short escapes for '"', '\\', '\n', '\r', '\t', '\b', '\f', and \uXXXX
// for everything outside printable ASCII (0x20–0x7e), astral characters as
// surrogate pairs.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// DumpStrings is json.dumps of a list of strings: ", " between items.
func DumpStrings(list []string) string {
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
