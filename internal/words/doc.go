// Package words says counts, ages, times, empty cells and machines the
// way the commands print them for a person ("1 machine", "50h12m",
// "never", "-", "web1 (UUID)"), so `check`, `status`, `logs`, `orphans`,
// `snapshots` and the coordinator's listings agree.
package words
