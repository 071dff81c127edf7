package words

import (
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	for _, tt := range []struct {
		n                int
		singular, plural string
		want             string
	}{
		{0, "machine", "", "0 machines"},
		{1, "machine", "", "1 machine"},
		{2, "machine", "", "2 machines"},
		{1, "machine directory", "machine directories", "1 machine directory"},
		{3, "machine directory", "machine directories", "3 machine directories"},
	} {
		if got := Count(tt.n, tt.singular, tt.plural); got != tt.want {
			t.Errorf("Count(%d, %q, %q) = %q, want %q", tt.n, tt.singular, tt.plural, got, tt.want)
		}
	}
}

// TestAge: an age is never empty, whatever its size.
func TestAge(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{20 * time.Second, "20s"},
		{29*time.Second + 600*time.Millisecond, "30s"},
		{90 * time.Second, "2m"},
		{50*time.Hour + 12*time.Minute + 10*time.Second, "50h12m"},
		{3 * time.Hour, "3h0m"},
	} {
		if got := Age(tt.d); got != tt.want {
			t.Errorf("Age(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestDashAndMachine(t *testing.T) {
	for _, tt := range []struct{ name, got, want string }{
		{"empty cell", Dash(""), "-"},
		{"cell", Dash("web1"), "web1"},
		{"with unit", Machine("m-1", "web1"), "web1 (m-1)"},
		{"without unit", Machine("m-1", ""), "m-1"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
