package monitor

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// family is a parsed family, flattened for comparison: its help, type,
// and each sample's value by its labels.
type family struct {
	Help, Type string
	Samples    map[string]float64
}

// parseScrape GETs h and parses the text format; with gz, it asks for
// gzip as Prometheus does.
func parseScrape(t *testing.T, h http.Handler, gz bool) map[string]family {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d: %s", rec.Code, rec.Body)
	}
	var body io.Reader = rec.Body
	if got := rec.Header().Get("Content-Encoding"); (got == "gzip") != gz {
		t.Fatalf("asked for gzip %v, got Content-Encoding %q", gz, got)
	}
	if gz {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	out := map[string]family{}
	for name, f := range fams {
		fl := family{Help: f.GetHelp(), Type: f.GetType().String(), Samples: map[string]float64{}}
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			slices.Sort(labels)
			key := strings.Join(labels, ",")
			if _, dup := fl.Samples[key]; dup {
				t.Fatalf("%s{%s} twice", name, key)
			}
			switch {
			case m.Gauge != nil:
				fl.Samples[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				fl.Samples[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				fl.Samples[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
		out[name] = fl
	}
	return out
}

// TestHandlerMatchesCollector: what Handler serves from its cache is what
// promhttp serves from the full Collector, after a backup, a failure, a
// departed machine and label values that need escaping.
func TestHandlerMatchesCollector(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	s.SeedSource("m1", "web1", "etc", now.Add(-time.Hour))
	s.SeedSource("m1", "web1", "home", now.Add(-2*time.Hour))
	s.SeedSource("m2", `db "1" \ x`, "etc", now.Add(-3*time.Hour))
	s.SeedHistory("m3", "new\nline", "var", SourceHistory{LastAttempt: now.Add(-time.Minute), Failures: 2,
		FailingSince: now.Add(-2 * time.Hour), LastError: "rsync failed"})
	s.SetAssigned(map[string]Assignment{"m1": {Unit: "web1", Since: now.Add(-48 * time.Hour)},
		"m2": {Unit: `db "1" \ x`, Since: now.Add(-24 * time.Hour)}, "m3": {Unit: "new\nline", Since: now.Add(-time.Hour)},
		"m4": {Unit: "never", Since: now.Add(-time.Hour)}})

	full := prometheus.NewRegistry()
	full.MustRegister(s.Collector())
	want := promhttp.HandlerFor(full, promhttp.HandlerOpts{})
	live := prometheus.NewRegistry()
	live.MustRegister(s.LiveCollector())
	var gatherErrs []error
	got := s.Handler(live, func(err error) { gatherErrs = append(gatherErrs, err) })

	steps := []struct {
		name string
		do   func()
	}{
		{"seeded", func() {}},
		{"again, all from the cache", func() {}},
		{"a backup succeeded, one failed", func() {
			s.BackupFinished("m1", "web1", "etc", true, now.Add(-time.Minute), now, "")
			s.BackupFinished("m2", `db "1" \ x`, "etc", false, now.Add(-time.Minute), now, "rsync exited with return code 10")
		}},
		{"a machine departed, a new source", func() {
			s.SetAssigned(map[string]Assignment{"m1": {Unit: "web1", Since: now.Add(-48 * time.Hour)},
				"m3": {Unit: "new\nline", Since: now.Add(-time.Hour)}})
			s.BackupFinished("m1", "web1", "srv", true, now.Add(-time.Minute), now.Add(time.Second), "")
		}},
	}
	for i, st := range steps {
		st.do()
		w, g := parseScrape(t, want, false), parseScrape(t, got, i%2 == 1)
		if diff := cmp.Diff(w, g); diff != "" {
			t.Fatalf("%s: Handler against promhttp (-want +got):\n%s", st.name, diff)
		}
		if len(w["turku_storage_source_last_success_timestamp_seconds"].Samples) == 0 {
			t.Fatalf("%s: no per-source series at all: the comparison proves nothing", st.name)
		}
	}
	if len(gatherErrs) > 0 {
		t.Errorf("gather errors: %v", gatherErrs)
	}
}

// TestHandlerBlocks: with rows over several blocks, a changed row makes
// its blocks be joined and compressed again, and only the output of
// those changes; a new row reorders all.
func TestHandlerBlocks(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	const machines = 2*blockRows/3 + 7 // 3 sources each: three blocks
	uuid := func(i int) string { return fmt.Sprintf("m%05d", i) }
	for i := range machines {
		for j, src := range []string{"etc", "home", "var"} {
			s.SeedSource(uuid(i), fmt.Sprintf("unit%d", i), src, now.Add(-time.Duration(i*3+j)*time.Second))
		}
	}
	full := prometheus.NewRegistry()
	full.MustRegister(s.Collector())
	want := promhttp.HandlerFor(full, promhttp.HandlerOpts{})
	live := prometheus.NewRegistry()
	live.MustRegister(s.LiveCollector())
	got := s.Handler(live, func(err error) { t.Error(err) })
	for i, st := range []struct {
		name string
		do   func()
	}{
		{"seeded", func() {}},
		{"seeded, gzip", func() {}},
		{"a row of the second block changed", func() {
			s.BackupFinished(uuid(blockRows/3+5), "", "home", false, now.Add(-time.Minute), now, "rsync exited with return code 23")
		}},
		{"the same, gzip", func() {}},
		{"a row of the last block changed, gzip", func() {
			s.BackupFinished(uuid(machines-1), "", "var", true, now.Add(-time.Minute), now, "")
		}},
		{"a new row at the start", func() {
			s.BackupFinished("a-first", "first", "etc", true, now.Add(-time.Minute), now, "")
		}},
		{"the same, gzip", func() {}},
	} {
		st.do()
		w, g := parseScrape(t, want, false), parseScrape(t, got, i%2 == 1)
		if diff := cmp.Diff(w, g); diff != "" {
			t.Fatalf("%s: Handler against promhttp (-want +got):\n%s", st.name, diff)
		}
	}
}

// TestHandlerConcurrentScrapes: scrapes running at once, while backups
// finish, each get a whole, parseable reply (run with -race: the blocks a
// scrape writes after releasing the cache's lock are never changed).
func TestHandlerConcurrentScrapes(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	for i := range blockRows + 10 {
		s.SeedSource(fmt.Sprintf("m%05d", i), "u", "etc", now.Add(-time.Duration(i)*time.Second))
	}
	live := prometheus.NewRegistry()
	live.MustRegister(s.LiveCollector())
	h := s.Handler(live, func(err error) { t.Error(err) })
	const scrapers, rounds = 4, 5
	counts := make(chan int, scrapers*rounds) // last-success series per scrape
	var wg sync.WaitGroup
	for g := range scrapers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/metrics", nil)
				if (g+r)%2 == 1 {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				h.ServeHTTP(rec, req)
				var body io.Reader = rec.Body
				if rec.Header().Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(rec.Body)
					if err != nil {
						t.Error(err)
						return
					}
					body = zr
				}
				p := expfmt.NewTextParser(model.UTF8Validation)
				fams, err := p.TextToMetricFamilies(body)
				if err != nil {
					t.Error(err)
					return
				}
				counts <- len(fams["turku_storage_source_last_success_timestamp_seconds"].GetMetric())
			}
		}()
	}
	for i := range 20 {
		s.BackupFinished(fmt.Sprintf("m%05d", i*37%(blockRows+10)), "u", "etc", true, now, now.Add(time.Duration(i)*time.Second), "")
	}
	wg.Wait()
	close(counts)
	n := 0
	for got := range counts {
		n++
		if got != blockRows+10 {
			t.Errorf("a scrape had %d last-success series, want %d", got, blockRows+10)
		}
	}
	if n != scrapers*rounds {
		t.Errorf("got %d scrapes, want %d", n, scrapers*rounds)
	}
}
