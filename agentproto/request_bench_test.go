package agentproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/turku-backup/turku-storage/internal/baseline"
)

// benchRequest is a checkin for five sources, the way turku-agent writes
// it: one JSON object, then a line holding ".".
func benchRequest() []byte {
	var src []string
	for i := range 5 {
		src = append(src, fmt.Sprintf(`"source%d": {"username": "Xq7pT2mWv9LcR4sA", "password": "b8Nf3KzQ1yHd6JtE0uGcVw5rMx2LpS9a"}`, i))
	}
	return []byte(`{"verbose": true, "action": "checkin", "port": 51234, "sources": {` + strings.Join(src, ", ") + "}}\n.\n")
}

// BenchmarkRead: reading and validating an agent's request from the
// session's stdin. Baseline in the same run: json.Unmarshal of the same
// object into a map, no validation (the least any reader must do).
func BenchmarkRead(b *testing.B) {
	data := benchRequest()
	body := data[:bytes.LastIndex(data, []byte("\n.\n"))]
	plain := baseline.NsPerOp(func() {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			b.Fatal(err)
		}
	})
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		req, err := Read(bufio.NewReader(bytes.NewReader(data)))
		if err != nil || len(req.Sources) != 5 {
			b.Fatalf("Read: %v, %d sources", err, len(req.Sources))
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(plain, "json-unmarshal-ns/op")
	b.ReportMetric(perOp/plain, "x-of-unmarshal")
}
