package main

import "strings"

// iecRate relabels a rate rsync prints ("12.34MB/s") in the IEC units the
// rest of the output uses ("12.34MiB/s"): rsync divides by 1024 and
// labels the result kB, MB, GB (progress.c), so only the label changes.
func iecRate(rate string) string {
	for _, u := range [][2]string{{"kB/s", "KiB/s"}, {"MB/s", "MiB/s"}, {"GB/s", "GiB/s"}, {"TB/s", "TiB/s"}} {
		if n, ok := strings.CutSuffix(rate, u[0]); ok {
			return n + u[1]
		}
	}
	return rate
}
