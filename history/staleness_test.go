package history

import (
	"testing"
	"time"
)

func TestStaleness(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rule := Staleness{MaxAge: 48 * time.Hour, WarnAge: 24 * time.Hour}
	tests := []struct {
		name                   string
		rule                   Staleness
		lastSuccess, firstSeen time.Time
		want                   Level
		wantAge                time.Duration
	}{
		{"fresh success", rule, now.Add(-time.Hour), time.Time{}, Fresh, time.Hour},
		{"past warn age", rule, now.Add(-25 * time.Hour), time.Time{}, Warning, 25 * time.Hour},
		{"at max age", rule, now.Add(-48 * time.Hour), time.Time{}, Warning, 48 * time.Hour},
		{"past max age", rule, now.Add(-49 * time.Hour), time.Time{}, Critical, 49 * time.Hour},
		{"no warning level", Staleness{MaxAge: 48 * time.Hour}, now.Add(-47 * time.Hour), time.Time{}, Fresh, 47 * time.Hour},
		{"never succeeded: from first seen", rule, time.Time{}, now.Add(-50 * time.Hour), Critical, 50 * time.Hour},
		{"a success wins over first seen", rule, now.Add(-time.Hour), now.Add(-50 * time.Hour), Fresh, time.Hour},
		{"nothing known", rule, time.Time{}, time.Time{}, Fresh, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, age := tt.rule.Rate(Since(tt.lastSuccess, tt.firstSeen), now)
			if got != tt.want || age != tt.wantAge {
				t.Errorf("got %v, %v; want %v, %v", got, age, tt.want, tt.wantAge)
			}
		})
	}
}
