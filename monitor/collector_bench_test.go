package monitor

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// benchMachines × benchSources is the size the issue asks about: 10,000
// machines with 3 sources each.
const (
	benchMachines = 10000
	benchSources  = 3
)

// seededState is a State knowing machines × sources sources, as serve
// has it after reading the snapshots on disk.
func seededState(machines int) *State {
	s := New(Options{Volumes: func() []Volume {
		return []Volume{{Name: "vol1", SizeBytes: 1 << 40, FreeBytes: 1 << 39, UsedPct: 50, MaxUsagePct: 95}}
	}})
	t := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for i := range machines {
		uuid := fmt.Sprintf("%08x-1b2c-4d3e-8f9a-0b1c2d3e4f50", i)
		for j, src := range []string{"etc", "home", "var"}[:benchSources] {
			s.SeedSource(uuid, fmt.Sprintf("unit%05d", i), src, t.Add(-time.Duration(i*3+j)*time.Second))
		}
	}
	s.SetMachines(machines)
	return s
}

// countWriter counts what a scrape would send.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// scrapeOnce does what promhttp does for one scrape: gather every
// collector and encode the text format.
func scrapeOnce(reg *prometheus.Registry, w io.Writer) error {
	fams, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkScrape: machines=0 is the in-run baseline, a scrape of the Go
// and process collectors and an empty state; machines=10000 adds the
// 60,000 per-source series of 10,000 machines × 3 sources.
func BenchmarkScrape(b *testing.B) {
	for _, machines := range []int{0, benchMachines} {
		b.Run(fmt.Sprintf("machines=%d", machines), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), seededState(machines).Collector())
			var w countWriter
			b.ReportAllocs()
			for b.Loop() {
				w.n = 0
				if err := scrapeOnce(reg, &w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n), "bytes/scrape")
		})
	}
}

// BenchmarkStateMemory measures the heap a State of 10,000 machines × 3
// sources holds, against an empty one built in the same run.
func BenchmarkStateMemory(b *testing.B) {
	for _, machines := range []int{0, benchMachines} {
		b.Run(fmt.Sprintf("machines=%d", machines), func(b *testing.B) {
			var heap uint64
			for b.Loop() {
				heap = heapAfter(func() any { return seededState(machines) })
			}
			b.ReportMetric(float64(heap), "heap-bytes")
			if machines > 0 {
				b.ReportMetric(float64(heap)/float64(machines*benchSources), "heap-bytes/source")
			}
		})
	}
}

// heapAfter returns how much more heap is live while build's result is
// kept than before it was built.
func heapAfter(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// discardResponse is an http.ResponseWriter that counts what it is sent.
type discardResponse struct {
	h http.Header
	n int64
}

func (d *discardResponse) Header() http.Header         { return d.h }
func (d *discardResponse) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discardResponse) WriteHeader(int)             {}

// BenchmarkScrapeCached is BenchmarkScrape through Handler, as serve
// answers /metrics: the Go and process collectors and LiveCollector
// gathered, the per-source and per-machine rows from the cache. "idle"
// is a scrape with nothing changed since the last (the cache filled
// before the timing); "one backup per scrape" has a backup finish
// between scrapes, so one source's lines are rendered again each time;
// "gzip" is idle, asked for gzip as Prometheus asks. BenchmarkScrape, run
// with it, is the uncached reference (uncompressed).
func BenchmarkScrapeCached(b *testing.B) {
	for _, machines := range []int{0, benchMachines} {
		for _, mode := range []string{"idle", "one_backup_per_scrape", "gzip"} {
			if machines == 0 && mode != "idle" {
				continue
			}
			churn := mode == "one_backup_per_scrape"
			b.Run(fmt.Sprintf("machines=%d/%s", machines, mode), func(b *testing.B) {
				s := seededState(machines)
				reg := prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s.LiveCollector())
				h := s.Handler(reg, func(err error) { b.Fatal(err) })
				req := httptest.NewRequest("GET", "/metrics", nil)
				if mode == "gzip" {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				w := &discardResponse{h: http.Header{}}
				h.ServeHTTP(w, req) // fills the cache
				end := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					if churn {
						uuid := fmt.Sprintf("%08x-1b2c-4d3e-8f9a-0b1c2d3e4f50", i%machines)
						s.BackupFinished(uuid, fmt.Sprintf("unit%05d", i%machines), "etc", true, end.Add(-time.Minute), end.Add(time.Duration(i)*time.Second), "")
						i++
					}
					w.n = 0
					h.ServeHTTP(w, req)
				}
				b.ReportMetric(float64(w.n), "bytes/scrape")
			})
		}
	}
}
