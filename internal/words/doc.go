// Package words says counts, ages and times the way the commands print
// them for a person ("1 machine", "50h12m", "never"), so `check`,
// `status`, `snapshots` and the coordinator's listings agree.
package words
