// Package baseline times the reference a benchmark reports itself
// against, measured in the same run, so that a speed target is a ratio
// and never a wall time. It is for benchmarks only.
package baseline
