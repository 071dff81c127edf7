// Package archtest holds the code to the map in docs/architecture.md: its
// test fails when a package is missing from the documented import graph
// or the Packages table, when an import is not allowed there (or allowed
// but no longer made), or when the feature table names a file that does
// not exist. It has no code of its own.
package archtest
