package backup

import (
	"strings"
	"testing"
	"time"

	"github.com/turku-backup/turku-storage/rsync"
)

func TestCheckSourceName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string // "" = accepted
	}{
		{"etc", ""},
		{"home-dirs", ""},
		{"saved", ""},
		{"-leading-dash", ""},
		{"", "source name is empty"},
		{".", `source name "." is not a usable file name`},
		{"..", `source name ".." is not a usable file name`},
		{"a/b", `source name "a/b" contains '/'`},
		{"../etc", `source name "../etc" contains '/'`},
		{"a\x00b", `source name "a\x00b" contains a control character`},
		{"a\nb", `source name "a\nb" contains a control character`},
		{"etc.snapshots", `source name "etc.snapshots" ends in ".snapshots"`},
		{strings.Repeat("x", 201), `source name "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"... is longer than 200 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSourceName(tt.name)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMachineLinkName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env, service, unit string
		want               string
		wantErr            string
	}{
		{unit: "web1", want: "web1"},
		{service: "www", unit: "web1", want: "www-web1"},
		{env: "prod", unit: "web1", want: "prod-web1"},
		{env: "prod", service: "www", unit: "web1", want: "prod-www-web1"},
		{env: "a/b", service: "c/d", unit: "e/f", want: "a_b-c_d-e_f"},
		{unit: "/", want: "_"},
		{unit: "", wantErr: "unit name is empty"},
		{unit: "..", wantErr: `unit name ".." is not a usable file name`},
		{env: ".", unit: "web1", wantErr: `environment name "." is not a usable file name`},
		{service: "..", unit: "web1", wantErr: `service name ".." is not a usable file name`},
		{unit: "a\x00", wantErr: `unit name "a\x00" contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.env+"|"+tt.service+"|"+tt.unit, func(t *testing.T) {
			got, err := machineLinkName(tt.env, tt.service, tt.unit)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseSnapshotName(t *testing.T) {
	t.Parallel()
	berlin := mustLoc(t, "Europe/Berlin")
	tests := []struct {
		name string
		want string // RFC 3339 in UTC, "" = not a snapshot time
	}{
		{"etc_20261125-031500_ab12", "2026-11-25T02:15:00Z"},
		{"my_source_20260701-120000_0000", "2026-07-01T10:00:00Z"},
		{"1424392089.43", "2015-02-20T00:28:09.43Z"},
		{"1424392089", "2015-02-20T00:28:09Z"},
		{"2015-02-20T03:20:36", "2015-02-20T02:20:36Z"},
		{"2015-02-20T03:21:18.152575", "2015-02-20T02:21:18.152575Z"},
		{"etc_20261125-031500_AB12", ""},
		{"etc_20261125-031500_ab1", ""},
		{"2015-02-20", ""},
		{"1e9", ""},
		{"inf", ""},
		{"-1", ""},
		{"latest", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseSnapshotName(tt.name, berlin)
			gotS := ""
			if ok {
				gotS = got.UTC().Format(time.RFC3339Nano)
			}
			if gotS != tt.want {
				t.Errorf("got %q, want %q", gotS, tt.want)
			}
		})
	}
}

func TestExcludedName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir, source string
		want        bool
	}{
		{"etc_20261125-031500_ab12", "etc", false},
		{"saved_20261125-031500_ab12", "saved", false},
		{"working_20261125-031500_ab12", "working", false},
		{"etc_20261125-031500_ab12-save", "etc", true},
		{"save-me", "etc", true},
		{"working", "etc", true},
		{"1424392089.43", "etc", false},
	}
	for _, tt := range tests {
		if got := excludedName(tt.dir, tt.source); got != tt.want {
			t.Errorf("excludedName(%q, %q) = %v, want %v", tt.dir, tt.source, got, tt.want)
		}
	}
}

// TestEncodeInfo pins the .json bytes to what Python's
// json.dump(sort_keys=True, indent=4) wrote for the same values.
func TestEncodeInfo(t *testing.T) {
	t.Parallel()
	berlin := mustLoc(t, "Europe/Berlin")
	begin := time.Date(2026, 11, 25, 3, 15, 0, 123456789, berlin)
	finish := time.Date(2026, 11, 25, 3, 16, 0, 0, berlin)
	tests := []struct {
		name, base string
		want       string
	}{
		{"etc_20261125-031600_ab12", "",
			"{\n    \"base\": null,\n    \"name\": \"etc_20261125-031600_ab12\",\n    \"sync_begin\": \"2026-11-25T03:15:00.123456+01:00\",\n    \"sync_finish\": \"2026-11-25T03:16:00+01:00\"\n}"},
		{"é\u2028😀\x01\x7f\"\\/", "b",
			"{\n    \"base\": \"b\",\n    \"name\": \"\\u00e9\\u2028\\ud83d\\ude00\\u0001\\u007f\\\"\\\\/\",\n    \"sync_begin\": \"2026-11-25T03:15:00.123456+01:00\",\n    \"sync_finish\": \"2026-11-25T03:16:00+01:00\"\n}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(encodeInfo(tt.name, tt.base, begin, finish, nil)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	t.Run("with stats", func(t *testing.T) {
		stats := &rsync.TransferStats{Files: 6, NewFiles: 5, FilesTransferred: 4, TotalSize: 3, TransferredSize: 2, BytesReceived: 1}
		want := "{\n    \"base\": null,\n    \"bytes_received\": 1,\n    \"files\": 6,\n    \"files_transferred\": 4,\n" +
			"    \"name\": \"n\",\n    \"new_files\": 5,\n    \"sync_begin\": \"2026-11-25T03:15:00.123456+01:00\",\n" +
			"    \"sync_finish\": \"2026-11-25T03:16:00+01:00\",\n    \"total_size\": 3,\n    \"transferred_size\": 2\n}"
		if got := string(encodeInfo("n", "", begin, finish, stats)); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
}

func TestISOTimeRoundTrip(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	for _, tm := range []time.Time{
		time.Date(2026, 3, 8, 1, 59, 59, 999999000, ny),
		time.Date(2026, 3, 8, 3, 0, 0, 0, ny),
		time.Date(2026, 7, 1, 0, 0, 0, 1000, time.UTC),
	} {
		s := isoTime(tm)
		got, err := parseISOTime(s, time.UTC)
		if err != nil || !got.Equal(tm) {
			t.Errorf("isoTime %s parsed back as %v, %v", s, got, err)
		}
	}
	if got := isoTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)); got != "2026-01-02T03:04:05+00:00" {
		t.Errorf("UTC time rendered %q, want Python's +00:00 form", got)
	}
}

func FuzzSnapshotName(f *testing.F) {
	for _, s := range []string{
		"etc_20261125-031500_ab12", "1424392089.43", "2015-02-20T03:21:18.152575", "x_99999999-999999_ffff",
		"save", "working", "", "99999999999.999999999",
	} {
		f.Add(s, int64(1764040500))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, sec int64) {
		_, _ = parseSnapshotName(name, berlin)
		_ = excludedName(name, "etc")
		// Our own names round-trip to the second, in any source name that
		// is valid.
		if checkSourceName(name) != nil {
			return
		}
		tm := time.Unix(sec%(1<<35), 0).In(berlin)
		if tm.Year() < 1000 || tm.Year() > 9999 {
			return
		}
		sn := snapshotName(name, tm, "0a1b")
		got, ok := parseSnapshotName(sn, berlin)
		if !ok {
			t.Fatalf("parseSnapshotName(%q) failed", sn)
		}
		// A wall time repeated at a DST change may parse as either instant.
		if d := got.Sub(tm); d != 0 && d != time.Hour && d != -time.Hour {
			t.Fatalf("parseSnapshotName(%q) = %v, want %v", sn, got, tm)
		}
		if excludedName(sn, name) {
			t.Fatalf("our snapshot name %q counts as excluded", sn)
		}
	})
}
