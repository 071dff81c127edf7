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

// Size is a byte count for people: 1023 B, 1.5 KiB, 2.0 GiB.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Dash is s, or "-" for an empty s (an empty cell in a table).
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
