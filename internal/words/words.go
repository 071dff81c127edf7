package words

import (
	"fmt"
	"strings"
	"time"
)

// Count is n with its noun: "1 machine", "2 machines", "0 machines".
// plural is the noun's plural; "" adds an s.
func Count(n int, singular, plural string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, singular)
	}
	if plural == "" {
		plural = singular + "s"
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// Has is the verb for n things: "has" for one, else "have".
func Has(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

// Age shows an age to the minute, like "50h12m" (under a minute, to the
// second: "42s").
func Age(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// When is t in local time (RFC 3339), or "never" for the zero time.
func When(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.RFC3339)
}

// Dash is s, or "-" for an empty s (an empty cell in a table).
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Machine is a machine for a person: "unit (uuid)", or the UUID alone.
func Machine(uuid, unit string) string {
	if unit == "" {
		return uuid
	}
	return strings.TrimSpace(unit + " (" + uuid + ")")
}
