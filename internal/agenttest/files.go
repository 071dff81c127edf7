package agenttest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteTree creates files (slash-separated relative path → content) under
// dir, with their parent directories: the data an agent's source holds.
func WriteTree[T string | []byte](t testing.TB, dir string, files map[string]T) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
