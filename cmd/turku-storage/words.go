package main

import "fmt"

// count is n with its noun: "1 machine", "2 machines", "0 machines".
// plural is the noun's plural; "" adds an s.
func count(n int, singular, plural string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, singular)
	}
	if plural == "" {
		plural = singular + "s"
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// has is the verb for n things: "has" for one, else "have".
func has(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}
