// Package testlog sends what the code under test logs, and what the
// processes a test starts print, to the test's own log (t.Log), so that
// `go test -v` and a failing test show it beside the assertions.
package testlog
