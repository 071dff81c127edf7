package monitor

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The example alert rules parse with Prometheus' own rule parser and use
// only metrics this package exports, so renaming a metric breaks this test
// rather than someone's alerting.
func TestExampleAlertRules(t *testing.T) {
	const path = "../examples/prometheus-alerts.yml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.Parse(data, false, model.UTF8Validation, p, nil)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", path, errs)
	}

	// up is Prometheus' own: 0 when a scrape of the unit failed.
	exported := map[string]bool{"up": true}
	descs := make(chan *prometheus.Desc, 100)
	state := New(Options{})
	state.Collector().Describe(descs)
	state.OrphanCollector().Describe(descs)
	close(descs)
	for d := range descs {
		// Desc's only accessor is String: Desc{fqName: "name", ...}.
		s := d.String()
		_, rest, _ := strings.Cut(s, `fqName: "`)
		name, _, _ := strings.Cut(rest, `"`)
		exported[name] = true
	}
	if len(exported) < 16 {
		t.Fatalf("read %d metric names from the collector: %v", len(exported), exported)
	}

	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
				continue
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && !exported[vs.Name] {
					t.Errorf("alert %s uses %s, which turku-storage does not export", r.Alert, vs.Name)
				}
				return nil
			})
		}
	}
	// The alerts the operations guide promises.
	for _, want := range []string{"TurkuSourceNotBackedUp", "TurkuMachineNeverBackedUp", "TurkuSourceFailing", "TurkuKeyRefreshFailing",
		"TurkuVolumeAboveGuard", "TurkuReportsSpooling", "TurkuReportSpoolNearlyFull", "TurkuReportsDropped", "TurkuConfigReloadFailed", "TurkuVolumeNotWritable", "TurkuVolumeInodesAboveGuard",
		"TurkuStorageUnitDown", "TurkuStorageUnitSourcesStale", "TurkuOrphanedMachine"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s in %s", want, path)
		}
	}
}
