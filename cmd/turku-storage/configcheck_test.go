package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// examplePath is the example configuration the package installs
// (packaging/nfpm.yaml).
const examplePath = "../../packaging/10-storage.yaml.example"

// TestConfigCheckPackagedExample: the example as shipped fails config
// check, naming each line to edit; with those lines edited (and a
// volume and var_dir of the test's own) it passes.
func TestConfigCheckPackagedExample(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(example), "\n")
	lineOf := func(text string) int {
		t.Helper()
		i := slices.Index(lines, text)
		if i < 0 {
			t.Fatalf("%s has no line %q", examplePath, text)
		}
		return i + 1
	}
	want := []string{
		fmt.Sprintf(`config.d/10-storage.yaml:%d: secret: "CHANGE-ME" is a placeholder; make one with: openssl rand -hex 32`,
			lineOf("secret: CHANGE-ME")),
		fmt.Sprintf(`config.d/10-storage.yaml:%d: api_url: "CHANGE-ME" is a placeholder; set turku-api's URL, or remove the line to run the built-in coordinator`,
			lineOf("api_url: CHANGE-ME")),
		fmt.Sprintf(`config.d/10-storage.yaml:%d: ssh_ping_host: "CHANGE-ME" is a placeholder; set the name agents connect to this host by`,
			lineOf("ssh_ping_host: CHANGE-ME")),
	}

	dir := t.TempDir()
	cd := filepath.Join(dir, "config.d")
	if err := os.Mkdir(cd, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(cd, "10-storage.yaml")
	if err := os.WriteFile(conf, example, 0o644); err != nil {
		t.Fatal(err)
	}
	// serve's state and the volume in the test's own directories.
	varDir, volume := filepath.Join(dir, "var"), filepath.Join(dir, "volume")
	if err := os.Mkdir(volume, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cd, "20-test.yaml"), []byte("var_dir: "+varDir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := run(t, context.Background(), nil, "-c", dir, "config", "check")
	if r.code != 1 {
		t.Fatalf("example as shipped: exit %d, want 1", r.code)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, "\n  "+w+"\n") {
			t.Errorf("stderr lacks the problem\n  %s", w)
		}
	}
	if r.stdout != "" {
		t.Errorf("a refused configuration printed %q", r.stdout)
	}
	if _, err := os.Stat(varDir); !os.IsNotExist(err) {
		t.Errorf("config check made var_dir: %v", err)
	}

	edited := strings.NewReplacer(
		"secret: CHANGE-ME\n", "secret: 3f1c9a0e5b7d42c8a6e1f0b9d2c4e6a8\n",
		"api_url: CHANGE-ME\n", "api_url: https://turku.example.com/v1\n",
		"ssh_ping_host: CHANGE-ME\n", "ssh_ping_host: storage.example.com\n",
		"path: /srv/turku-storage\n", "path: "+volume+"\n",
	).Replace(string(example))
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, context.Background(), nil, "-c", dir, "config", "check"); r.code != 0 {
		t.Errorf("example with its placeholders replaced: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}
