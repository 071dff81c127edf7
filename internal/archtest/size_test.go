package archtest

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines bounds a function of the packages thin by design: cmd
// (flags, options, a call, the printing) and daemon (serve's start, run
// loop and reload, readable in one sitting).
const maxFuncLines = 80

// maxCmdLines bounds cmd/turku-storage's non-test code: what grows past
// it is logic that belongs in the package that owns it.
const maxCmdLines = 1600

// goFiles returns the non-test Go files of dir (relative to the root).
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Go file: the test reads the wrong directory", dir)
	}
	return out
}

// TestFunctionsShort names every function of cmd and daemon longer than
// maxFuncLines, with its length.
func TestFunctionsShort(t *testing.T) {
	for _, dir := range []string{"cmd/turku-storage", "daemon"} {
		fset := token.NewFileSet()
		checked := 0
		for _, path := range goFiles(t, dir) {
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				checked++
				if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n > maxFuncLines {
					t.Errorf("%s: %s is %d lines, over %d: move its logic to a package or split it", fset.Position(fd.Pos()), fd.Name.Name, n, maxFuncLines)
				}
			}
		}
		if checked == 0 {
			t.Errorf("%s: no function found", dir)
		}
	}
}

// TestCmdThin holds cmd/turku-storage to maxCmdLines lines of non-test
// code (as `wc -l` counts them).
func TestCmdThin(t *testing.T) {
	total := 0
	for _, path := range goFiles(t, "cmd/turku-storage") {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			total++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if total > maxCmdLines {
		t.Errorf("cmd/turku-storage has %d lines of non-test code, over %d: move logic to the package that owns it", total, maxCmdLines)
	}
	t.Logf("cmd/turku-storage: %d lines of non-test code", total)
}
