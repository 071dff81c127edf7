package schedule

import (
	"testing"
	"time"
)

// sid is a source id as turku-api hashes it: str(source.id), a lowercase
// hyphenated UUID. crc32(sid) = 2425875956 (0x9097edf4). Residues used below:
//
//	crc%60 = 56    crc%86400 = 23156 (06:25:56)   crc%7 = 0
//	crc%31 = 3     crc%28 = 0                       crc%15 = 11
//	crc%28801 = 25328   crc%21601 = 18853   crc%3601 = 1089
//	croniter shifts by the field index: (crc>>1)%9 = 4, (crc>>1)%24 = 10,
//	(crc>>4)%7 = 5, (crc>>5)%60 = 3
const sid = "3f2c7a4e-8b1d-4c6f-9a2e-5d7b8c9e0f1a"

func TestHash(t *testing.T) {
	t.Parallel()
	// The cases of turku-api's own TestHashedint.
	tests := []struct {
		name string
		a, b int
		id   string
		want int
	}{
		{name: "hello", a: 1, b: 100, id: "hello", want: 71},                 // crc32("hello") = 907060870; %100 = 70; +1
		{name: "bytes", a: 1, b: 100, id: "\x01\x02\x03", want: 26},          // turku-api test_bytes_id
		{name: "empty id", a: 1, b: 100, id: "", want: 1},                    // crc32("") = 0
		{name: "source minute", a: 0, b: 59, id: sid, want: 56},              // crc%60
		{name: "source second of day", a: 0, b: 86399, id: sid, want: 23156}, // crc%86400
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Hash(tc.a, tc.b, tc.id); got != tc.want {
				t.Errorf("Hash(%d, %d, %q) = %d, want %d", tc.a, tc.b, tc.id, got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	// Wednesday 2026-11-25 14:30:45.5 UTC.
	base := time.Date(2026, 11, 25, 14, 30, 45, 500_000_000, time.UTC)
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		freq string
		base time.Time
		want time.Time
	}{
		// This hour + 1 at minute h(0,59) and second h(0,59): both crc%60.
		{"hourly", "hourly", base, utc("2026-11-25 15:56:56")},
		// hourly returns before reading a window.
		{"hourly ignores window", "hourly, 0800-0900", base, utc("2026-11-25 15:56:56")},
		// Tomorrow midnight + crc%86400 s.
		{"daily", "daily", base, utc("2026-11-26 06:25:56")},
		// Unknown words, including case variants, fall back to daily.
		{"unknown word", "bogus", base, utc("2026-11-26 06:25:56")},
		{"case sensitive", "Hourly", base, utc("2026-11-26 06:25:56")},
		// Sunday of this week (11-22) + 7 + crc%7 (0) = Sunday 11-29.
		{"weekly", "weekly", base, utc("2026-11-29 06:25:56")},
		// Today counts even though 06:25:56 has passed: due at once.
		{"weekday today", "wednesday", base, utc("2026-11-25 06:25:56")},
		// Tuesday of this week is past: next week's.
		{"weekday next week", "tuesday", base, utc("2026-12-01 06:25:56")},
		// 12-01 + h(1,31) days = 12-01 + (3+1).
		{"monthly", "monthly", base, utc("2026-12-05 06:25:56")},
		// February has 28 days: 02-01 + (0+1).
		{"monthly into february", "monthly", utc("2027-01-31 10:00:00"), utc("2027-02-02 06:25:56")},
		// 28800 + crc%(57600-28800+1) = 28800+25328 = 54128 s = 15:02:08.
		{"window", "daily, 0800-1600", base, utc("2026-11-26 15:02:08")},
		// End before start rolls over: 79200..100800; 79200+18853 = 98053 s
		// = 27:14:13, i.e. 03:14:13 the day after tomorrow.
		{"window over midnight", "daily, 2200-0400", base, utc("2026-11-27 03:14:13")},
		// Bounds are not trimmed: " 0400" reads as hour " 0", minute "40",
		// so the window is 79200..2400+86400 and 79200 + crc%9601 (887)
		// = 80087 s = 22:14:47.
		{"window with spaces", " daily ,  2200 - 0400 ", base, utc("2026-11-26 22:14:47")},
		// A single time is used as is, no hashing.
		{"fixed time", "daily, 0800", base, utc("2026-11-26 08:00:00")},
		// Only the first 4 characters of a bound count.
		{"long bound", "daily, 0800xyz", base, utc("2026-11-26 08:00:00")},
		// Saturday 11-28 + 84600 + crc%3601 (1089) = 85689 s = 23:48:09.
		{"weekday window", "saturday, 2330-0030", base, utc("2026-11-28 23:48:09")},
		// Minute (crc>>0)%60 = 56, hour 8 + (crc>>1)%9 = 12; 12:56 today
		// is past, so tomorrow; second replaced by crc%60 = 56.
		{"cron hashed", "cron H H(8-16) * * *", base, utc("2026-11-26 12:56:56")},
		{"cron fixed", "cron 30 2 * * *", base, utc("2026-11-26 02:30:56")},
		// H/15 -> 11-59/15: 11, 26, 41, 56; the next after 14:30 is 14:41.
		{"cron hashed step", "cron H/15 * * * *", base, utc("2026-11-25 14:41:56")},
		// Hour (crc>>1)%24 = 10, weekday (crc>>4)%7 = 5: Friday 10:56.
		{"cron hashed weekday", "cron H H * * H", base, utc("2026-11-27 10:56:56")},
		// @daily -> "h h * * * h": 10:56:03 tomorrow, then second 56.
		{"cron alias", "cron @daily", base, utc("2026-11-26 10:56:56")},
		// Both day fields restricted: either matches; Monday 11-30 wins
		// over 12-01.
		{"cron day or", "cron 0 0 1 * mon", base, utc("2026-11-30 00:00:56")},
		// Strictly after base's minute, even at second 0.
		{"cron strictly after", "cron 30 14 * * *", utc("2026-11-25 14:30:00"), utc("2026-11-26 14:30:56")},
		{"cron case insensitive", "cron 0 0 * * MON", base, utc("2026-11-30 00:00:56")},
		{"cron last day", "cron 0 0 l * *", base, utc("2026-11-30 00:00:56")},
		// croniter reads "fri-mon" as fri, sat, sun, mon.
		{"cron wrapping range", "cron 0 22 * * fri-mon", base, utc("2026-11-27 22:00:56")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.freq)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.freq, err)
			}
			got, err := f.Next(tc.base, time.UTC, sid)
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("Next(%q) = %v, want %v", tc.freq, got, tc.want)
			}
		})
	}
}

func TestNextLocation(t *testing.T) {
	t.Parallel()
	hel, err := time.LoadLocation("Europe/Helsinki")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	tests := []struct {
		name string
		freq string
		base time.Time
		want time.Time
	}{
		// 14:30 UTC is 16:30 EET; tomorrow's local midnight + 06:25:56.
		{"daily", "daily", time.Date(2026, 11, 25, 14, 30, 45, 0, time.UTC), time.Date(2026, 11, 26, 6, 25, 56, 0, hel)},
		// 23:30 UTC on the 25th is already the 26th in Helsinki.
		{"local date", "daily", time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC), time.Date(2026, 11, 27, 6, 25, 56, 0, hel)},
		// Across the spring DST change the wall clock is kept (EEST, +03).
		{"dst", "daily", time.Date(2026, 3, 28, 12, 0, 0, 0, hel), time.Date(2026, 3, 29, 6, 25, 56, 0, hel)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.freq)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Next(tc.base, hel, sid)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	// Each of these makes turku-api raise (and answer 500).
	tests := []string{
		"daily,",              // int("")
		"daily, ab00",         // int("ab")
		"daily, 08",           // int("") for the minutes
		"daily, 0800-",        // empty end
		"cron",                // no expression
		"cron * * * *",        // 4 fields
		"cron * * * * * * *",  // years are not supported
		"cron 60 * * * *",     // out of range
		"cron 0 0 0 * *",      // day 0
		"cron -5 * * * *",     // negative
		"cron foo * * * *",    // not a name
		"cron */0 * * * *",    // step 0
		"cron h(5-5) * * * *", // hashed range must grow
		"cron 0 0 * * mon#2",  // nth weekday not supported
		"cron 0 0 ?,1 * *",    // ? alone only
		"cron ? * * * *",      // ? only in day fields
	}
	for _, s := range tests {
		t.Run(s, func(t *testing.T) {
			if f, err := Parse(s); err == nil {
				t.Errorf("Parse(%q) = %v, want an error", s, f)
			}
		})
	}
}

func TestNextNoMatch(t *testing.T) {
	t.Parallel()
	f, err := Parse("cron 0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC, sid); err == nil {
		t.Errorf("Next = %v, want an error (February 30th never comes)", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"hourly", "daily", "weekly", "monthly", "sunday", "daily, 0800-1600",
		"daily, 2200-0400", "friday, 0300", "cron H H(8-16) * * *", "cron @weekly",
		"cron */15 1-5 l jan-mar fri-mon", "cron H(30-59)/10 * * * *", "daily, 9999-0000",
	} {
		f.Add(s)
	}
	base := time.Date(2026, 11, 25, 14, 30, 45, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		fr, err := Parse(s)
		if err != nil {
			return
		}
		next, err := fr.Next(base, time.UTC, sid)
		if err != nil {
			return
		}
		// A cron match is never in an earlier minute than base (the 6-field
		// form can land later in the same minute).
		if fr.kind == kindCron && next.Truncate(time.Minute).Before(base.Truncate(time.Minute)) {
			t.Errorf("cron %q: next %v before base %v", s, next, base)
		}
	})
}
