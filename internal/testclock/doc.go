// Package testclock is a settable clock for tests: the code under test
// is handed Clock.Now where it takes a `now func() time.Time`, and the
// test moves time on with Add instead of waiting.
package testclock
