package coordinator

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/turku-backup/turku-storage/pyjson"
)

// This file re-implements the parts of Django model validation (full_clean)
// that turku-api's views rely on, so a bad registration gets the same
// "Validation error: {...}" answer.

// fieldErrors collects Django-style validation errors in field order.
type fieldErrors struct {
	fields []string
	msgs   map[string][]string
}

func (e *fieldErrors) add(field, msg string) {
	if e.msgs == nil {
		e.msgs = make(map[string][]string)
	}
	if _, ok := e.msgs[field]; !ok {
		e.fields = append(e.fields, field)
	}
	e.msgs[field] = append(e.msgs[field], msg)
}

func (e *fieldErrors) has(field string) bool { _, ok := e.msgs[field]; return ok }

// requireSet adds Django's error for a required field left blank, unless
// field has an error already: a default that is blank fails too (a new
// source without a path).
func (e *fieldErrors) requireSet(field, value string) {
	if value == "" && !e.has(field) {
		e.add(field, "This field cannot be blank.")
	}
}

// addFrom copies from's messages for fields, in that order: full_clean
// reports fields in the model's declaration order, whatever order they
// were checked in.
func (e *fieldErrors) addFrom(from *fieldErrors, fields ...string) {
	for _, f := range fields {
		for _, msg := range from.msgs[f] {
			e.add(f, msg)
		}
	}
}

// err returns turku-api's 400 answer, formatted as str(ValidationError) of
// an error dict: {'field': ['message']}.
func (e *fieldErrors) err() error {
	if len(e.fields) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("Validation error: {")
	for i, f := range e.fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pyRepr(f))
		b.WriteString(": [")
		for j, m := range e.msgs[f] {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyRepr(m))
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	return badRequest(b.String())
}

// pyRepr quotes s as Python's repr() of a str does.
func pyRepr(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pyStr is Python's str() of a JSON value as json.load produced it.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return strconv.FormatInt(i, 10)
		}
		if _, ok := new(big.Int).SetString(string(x), 10); ok {
			return string(x)
		}
		f, err := x.Float64()
		if err != nil {
			return string(x)
		}
		return pyFloat(f)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// pyFloat formats f as Python's repr of a float.
func pyFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	if a := math.Abs(f); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(f, 'e', -1, 64) // 1e+16, 1.5e-05 as in Python
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// pyEq reports whether a JSON request value equals a stored value the way
// Python's == does (True == 1, 1 == 1.0, None == None).
func pyEq(raw, stored any) bool {
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case bool:
			if x {
				return 1, true
			}
			return 0, true
		case json.Number:
			f, err := x.Float64()
			return f, err == nil
		case int64:
			return float64(x), true
		}
		return 0, false
	}
	switch s := stored.(type) {
	case nil:
		return raw == nil
	case *string:
		if s == nil {
			return raw == nil
		}
		r, ok := raw.(string)
		return ok && r == *s
	case string:
		r, ok := raw.(string)
		return ok && r == s
	case bool, int64:
		a, ok1 := num(raw)
		b, _ := num(s)
		return ok1 && a == b
	}
	return false
}

// charField converts a request value as Django's CharField.to_python does
// (str() of anything but None) and checks it.
func charField(errs *fieldErrors, field string, v any, maxLen int, null, blank bool) *string {
	if v == nil {
		if !null {
			errs.add(field, "This field cannot be null.")
		}
		return nil
	}
	s := pyStr(v)
	if s == "" {
		if !blank {
			errs.add(field, "This field cannot be blank.")
		}
		return &s
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		errs.add(field, fmt.Sprintf("Ensure this value has at most %d characters (it has %d).", maxLen, n))
	}
	return &s
}

// choiceField is a nullable, blank CharField with choices.
func choiceField(errs *fieldErrors, field string, v any, maxLen int, choices ...string) *string {
	s := charField(errs, field, v, maxLen, true, true)
	if s == nil || *s == "" || errs.has(field) {
		return s
	}
	for _, c := range choices {
		if *s == c {
			return s
		}
	}
	errs.add(field, fmt.Sprintf("Value %s is not a valid choice.", pyRepr(*s)))
	return s
}

// boolField converts as Django's BooleanField.to_python does.
func boolField(errs *fieldErrors, field string, v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil && (f == 0 || f == 1) {
			return f == 1
		}
	case string:
		switch x {
		case "t", "True", "1":
			return true
		case "f", "False", "0":
			return false
		}
	}
	errs.add(field, fmt.Sprintf("“%s” value must be either True or False.", pyStr(v)))
	return false
}

// intField converts as Django's IntegerField.to_python (int(value)) and
// checks the bounds of a PositiveIntegerField with optional limits.
func intField(errs *fieldErrors, field string, v any, lo, hi int64) int64 {
	var n int64
	switch x := v.(type) {
	case nil:
		errs.add(field, "This field cannot be null.")
		return 0
	case bool:
		if x {
			n = 1
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			n = i
		} else if f, err := x.Float64(); err == nil && !math.IsInf(f, 0) && math.Abs(f) < 1<<62 {
			n = int64(f) // int() truncates
		} else {
			errs.add(field, fmt.Sprintf("“%s” value must be an integer.", pyStr(v)))
			return 0
		}
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			errs.add(field, fmt.Sprintf("“%s” value must be an integer.", x))
			return 0
		}
		n = i
	default:
		errs.add(field, fmt.Sprintf("“%s” value must be an integer.", pyStr(v)))
		return 0
	}
	if n < lo {
		errs.add(field, fmt.Sprintf("Ensure this value is greater than or equal to %d.", lo))
	}
	if n > hi {
		errs.add(field, fmt.Sprintf("Ensure this value is less than or equal to %d.", hi))
	}
	return n
}

// stringListField is turku-api's handling of filter, exclude and
// ssh_ping_host_keys: the value is stored as json.dumps(value,
// sort_keys=True) and must be a JSON list of strings.
func stringListField(errs *fieldErrors, field string, v any, maxLen int) (string, []string) {
	list, ok := v.([]any)
	var out []string
	if ok {
		for _, e := range list {
			s, isStr := e.(string)
			if !isStr {
				ok = false
				break
			}
			out = append(out, s)
		}
	}
	if !ok {
		errs.add(field, "Must be a valid JSON string list")
		return "", nil
	}
	text := pyjson.DumpStrings(out)
	if n := len(text); n > maxLen {
		errs.add(field, fmt.Sprintf("Ensure this value has at most %d characters (it has %d).", maxLen, n))
	}
	return text, out
}

// decodeStringList reads a list stored by pyjson.DumpStrings (or turku-api).
func decodeStringList(text string) []string {
	var out []string
	if err := json.Unmarshal([]byte(text), &out); err != nil || out == nil {
		return []string{}
	}
	return out
}

var errBadUUID = errors.New("badly formed hexadecimal UUID string")

// parseUUID accepts what Python's uuid.UUID(str) does in practice: 32 hex
// digits, optionally with hyphens, braces and a "urn:uuid:" prefix.
func parseUUID(v any) ([16]byte, error) {
	var u [16]byte
	s, ok := v.(string)
	if !ok {
		return u, errBadUUID
	}
	s = strings.ReplaceAll(s, "urn:", "")
	s = strings.ReplaceAll(s, "uuid:", "")
	s = strings.Trim(s, "{}")
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return u, errBadUUID
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return u, errBadUUID
	}
	return u, nil
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// plausibleUUID is turku-api's validate_uuid: an RFC 4122 variant whose
// non-fixed bits look random (Shannon entropy of the bit distribution at
// least 0.95), to refuse made-up UUIDs such as all zeros.
func plausibleUUID(u [16]byte) bool {
	if u[8]&0xc0 != 0x80 { // Python's UUID.version is None unless RFC 4122
		return false
	}
	bit := func(i int) int { return int(u[i/8]>>(7-i%8)) & 1 }
	ones, n := 0, 0
	for _, r := range [][2]int{{0, 48}, {52, 64}, {67, 128}} {
		for i := r[0]; i < r[1]; i++ {
			ones += bit(i)
			n++
		}
	}
	h := 0.0
	for _, c := range []int{ones, n - ones} {
		if c == 0 {
			continue
		}
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h >= 0.95
}

// truthy is Python's truth value of a JSON value.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case json.Number:
		f, err := x.Float64()
		return err != nil || f != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
