package coordinator

import (
	"strings"
	"testing"
	"time"
)

func TestWriteMachinesAndSources(t *testing.T) {
	var b strings.Builder
	if err := WriteMachines(&b, []Machine{{UUID: "m-1", UnitName: "web1", Active: true, Published: true, Sources: 2}}); err != nil {
		t.Fatal(err)
	}
	if want := "UUID  UNIT  ENVIRONMENT  SERVICE  ACTIVE  PUBLISHED  SOURCES  CHECKED IN\nm-1   web1  -            -        true    true       2        never\n"; b.String() != want {
		t.Errorf("machines:\ngot  %q\nwant %q", b.String(), want)
	}
	b.Reset()
	next := time.Date(2026, 12, 1, 3, 0, 0, 0, time.Local)
	if err := WriteSources(&b, []Source{
		{UnitName: "web1", Name: "etc", Path: "/etc", Frequency: "daily", Active: true, Published: true, Success: true, NextBackup: next},
		{UnitName: "web1", Name: "home", Path: "/home", Active: true, Published: false, Success: false, LastBackedUp: next.Add(-time.Hour), NextBackup: next},
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "UNIT  SOURCE  PATH   FREQUENCY  RETENTION  ACTIVE  LAST OK  LAST BACKUP") ||
		strings.Join(strings.Fields(lines[1]), " ") != "web1 etc /etc daily - true never never "+next.Format(time.RFC3339) ||
		strings.Join(strings.Fields(lines[2]), " ") != "web1 home /home - - false false "+next.Add(-time.Hour).Format(time.RFC3339)+" "+next.Format(time.RFC3339) {
		t.Errorf("sources:\n%s", b.String())
	}
}

// TestWarnCron: only a frequency turku-api reads as cron is warned about,
// as schedule.Parse reads it.
func TestWarnCron(t *testing.T) {
	var b strings.Builder
	WarnCron(&b, []Source{
		{UnitName: "web1", Name: "etc", Frequency: "cron H 3 * * *"},
		{UnitName: "web1", Name: "home", Frequency: "daily, 0100-0300"},
		{UnitName: "web2", Name: "etc", Frequency: "cronish"},
	})
	want := "warning: web1 etc has frequency \"cron H 3 * * *\": turku-api fails on cron frequencies (HTTP 500 on every report); change it to hourly/daily/weekly/monthly before moving\n" +
		"warning: web2 etc has frequency \"cronish\": turku-api fails on cron frequencies (HTTP 500 on every report); change it to hourly/daily/weekly/monthly before moving\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
