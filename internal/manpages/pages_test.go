package manpages

import (
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	for v, want := range map[string]string{
		"1.2.3":                                "1.2.3",
		"1.2.3~test1":                          "1.2.3~test1",
		"0.0.0+git20261201005400.c2c87ef12345": "0.0.0+c2c87ef",
		"devel-c2c87ef12345-dirty":             "devel-c2c87ef12345-dirty",
	} {
		if got := Version(v); got != want {
			t.Errorf("Version(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestDate(t *testing.T) {
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		flag, epoch string
		want        string
		err         bool
	}{
		{"", "", "2026-12-06", false},
		{"", "1764550440", "2025-12-01", false},
		{"2026-11-30T23:00:00Z", "1764550440", "2026-11-30", false},
		{"", "yesterday", "", true},
		{"30.11.2026", "", "", true},
	} {
		got, err := Date(tt.flag, tt.epoch, now)
		if (err != nil) != tt.err || (err == nil && got.UTC().Format("2006-01-02") != tt.want) {
			t.Errorf("Date(%q, %q) = %v, %v; want %s (error %v)", tt.flag, tt.epoch, got, err, tt.want, tt.err)
		}
	}
}
