package baseline

import "time"

// NsPerOp times f over at least 200 ms and returns its mean time per call
// in nanoseconds: a baseline measured in the same run as the benchmark it
// is reported beside.
func NsPerOp(f func()) float64 {
	n := 0
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond {
		f()
		n++
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
