package archtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// doc is docs/architecture.md, relative to the module root.
const doc = "docs/architecture.md"

// root is the module root: two levels up from this package.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return dir
}

// section returns the lines of text from the line equal to start up to
// the next line equal to end (both left out), with the line number of
// the first.
func section(t *testing.T, text []string, start, end string) ([]string, int) {
	t.Helper()
	i := slices.Index(text, start)
	if i < 0 {
		t.Fatalf("%s has no line %q", doc, start)
	}
	n := slices.Index(text[i+1:], end)
	if n < 0 {
		t.Fatalf("%s: nothing ends %q (line %d) with %q", doc, start, i+1, end)
	}
	return text[i+1 : i+1+n], i + 2
}

// graph is a package → the packages of this module it imports.
type graph map[string][]string

// line is pkg's line in the documented graph.
func (g graph) line(pkg string) string {
	if len(g[pkg]) == 0 {
		return pkg + " ->"
	}
	return pkg + " -> " + strings.Join(g[pkg], ", ")
}

// documented parses the ```imports block: "pkg -> dep, dep" per line.
func documented(t *testing.T, text []string) graph {
	t.Helper()
	lines, first := section(t, text, "```imports", "```")
	g := graph{}
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		pkg, deps, ok := strings.Cut(l, "->")
		pkg = strings.TrimSpace(pkg)
		if !ok || pkg == "" {
			t.Errorf("%s:%d: %q is not \"package -> dep, dep\"", doc, first+i, l)
			continue
		}
		if _, dup := g[pkg]; dup {
			t.Errorf("%s:%d: %s has a second line", doc, first+i, pkg)
		}
		g[pkg] = []string{}
		for d := range strings.SplitSeq(deps, ",") {
			if d = strings.TrimSpace(d); d != "" {
				g[pkg] = append(g[pkg], d)
			}
		}
		slices.Sort(g[pkg])
	}
	return g
}

// actual asks go list for every package of the module (bench/ included)
// and its imports within the module, test files aside.
func actual(t *testing.T, dir string) graph {
	t.Helper()
	mod, err := exec.Command("go", "list", "-m", "-f", "{{.Path}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	module := strings.TrimSpace(string(mod))
	cmd := exec.Command("go", "list", "-tags", "bench", "-e", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := graph{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, ok := strings.CutPrefix(f[0], module+"/")
		if !ok {
			t.Fatalf("go list: %s is outside module %s", f[0], module)
		}
		g[pkg] = []string{}
		for _, imp := range f[1:] {
			if dep, ok := strings.CutPrefix(imp, module+"/"); ok {
				g[pkg] = append(g[pkg], dep)
			}
		}
		slices.Sort(g[pkg])
	}
	return g
}

// TestImportGraph holds the code to the documented import graph: every
// package has its line, with exactly the packages of ours it imports.
func TestImportGraph(t *testing.T) {
	dir := root(t)
	text := readDoc(t, dir)
	want, got := documented(t, text), actual(t, dir)
	for _, pkg := range sortedKeys(got) {
		deps, ok := want[pkg]
		if !ok {
			t.Errorf("package %s is not in %s's import graph (the imports block); add the line\n\t%s\n(and a row in its Packages table)", pkg, doc, got.line(pkg))
			continue
		}
		var extra, stale []string
		for _, d := range got[pkg] {
			if !slices.Contains(deps, d) {
				extra = append(extra, d)
			}
		}
		for _, d := range deps {
			if !slices.Contains(got[pkg], d) {
				stale = append(stale, d)
			}
		}
		var why []string
		if len(extra) > 0 {
			why = append(why, fmt.Sprintf("it imports %s, which the line does not allow", strings.Join(extra, ", ")))
		}
		if len(stale) > 0 {
			why = append(why, fmt.Sprintf("it does not import %s, which the line lists", strings.Join(stale, ", ")))
		}
		if len(why) > 0 {
			t.Errorf("package %s: %s; if that is intended, replace its line in %s's imports block\n\t%s\nwith\n\t%s",
				pkg, strings.Join(why, ", and "), doc, want.line(pkg), got.line(pkg))
		}
	}
	for _, pkg := range sortedKeys(want) {
		if _, ok := got[pkg]; !ok {
			t.Errorf("%s's import graph has package %s, which does not exist; remove the line\n\t%s", doc, pkg, want.line(pkg))
		}
	}
}

// TestPackagesTable: every package has a row in the Packages table.
func TestPackagesTable(t *testing.T) {
	dir := root(t)
	text := readDoc(t, dir)
	rows, _ := section(t, text, "## Packages", "### Import graph")
	named := map[string]bool{}
	first := regexp.MustCompile("`([^`]+)`")
	for _, r := range rows {
		cells := strings.Split(r, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range first.FindAllStringSubmatch(cells[1], -1) {
			named[m[1]] = true
		}
	}
	for _, pkg := range sortedKeys(actual(t, dir)) {
		if !named[pkg] {
			t.Errorf("package %s has no row in %s's Packages table; add\n\t| `%s` | what it is for |", pkg, doc, pkg)
		}
	}
}

// TestFeatureFiles: every file and directory the feature table names
// exists.
func TestFeatureFiles(t *testing.T) {
	dir := root(t)
	text := readDoc(t, dir)
	rows, first := section(t, text, "### Where each feature lives", "## 1. Start-up (`cmd/turku-storage/serve.go`, `daemon/run.go`)")
	path := regexp.MustCompile("`([^` ]+(?:\\.go|/))`")
	n := 0
	for i, r := range rows {
		for _, m := range path.FindAllStringSubmatch(r, -1) {
			n++
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(m[1]))); err != nil {
				t.Errorf("%s:%d: the feature table names %s: %v", doc, first+i, m[1], err)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: the feature table names no files", doc)
	}
}

func readDoc(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, doc))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")
}

func sortedKeys(g graph) []string {
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
