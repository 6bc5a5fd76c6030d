// Package docs_test keeps the documentation true to the tree: the package
// table of architecture.md is generated from the packages and their doc
// comments (go test ./docs -run TestArchitecturePackages -update rewrites
// it), and every docs page that Go code cites must exist.
package docs_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated parts of the docs")

const (
	beginTable = "<!-- BEGIN PACKAGES: generated from the package docs by docs/docs_test.go; go test ./docs -update -->"
	endTable   = "<!-- END PACKAGES -->"
)

// pkg is one Go package of the module: its directory and the first
// sentence of its doc comment.
type pkg struct{ dir, synopsis string }

// packages lists the module's packages (directories with .go files, not
// testdata, caches or the nested modules under hack/envtest).
func packages(t *testing.T, root string) []pkg {
	t.Helper()
	var out []pkg
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "bin" || name == "artifacts") {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		p, ok, err := parsePackage(path)
		if err != nil || !ok {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		p.dir = filepath.ToSlash(rel)
		if p.dir == "docs" {
			return nil // this test
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir < out[j].dir })
	return out
}

// parsePackage reads the doc comment of the package in dir: from its
// non-test files, or from its test files when it has only those.
func parsePackage(dir string) (pkg, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return pkg{}, false, err
	}
	var docs, testDocs []string
	found := false
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		found = true
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return pkg{}, false, err
		}
		if f.Doc == nil {
			continue
		}
		if strings.HasSuffix(e.Name(), "_test.go") {
			testDocs = append(testDocs, f.Doc.Text())
		} else {
			docs = append(docs, f.Doc.Text())
		}
	}
	if len(docs) == 0 {
		docs = testDocs
	}
	var synopsis string
	if len(docs) > 0 {
		synopsis = new(doc.Package).Synopsis(docs[0])
	}
	return pkg{synopsis: synopsis}, found, nil
}

func table(pkgs []pkg) string {
	var b strings.Builder
	b.WriteString(beginTable + "\n\n| package | what it provides (its doc comment) |\n|---|---|\n")
	for _, p := range pkgs {
		fmt.Fprintf(&b, "| `%s` | %s |\n", p.dir, strings.ReplaceAll(p.synopsis, "|", `\|`))
	}
	b.WriteString("\n" + endTable)
	return b.String()
}

// TestArchitecturePackages: every package is in architecture.md's table,
// with its doc comment's first sentence, and nothing else is.
func TestArchitecturePackages(t *testing.T) {
	pkgs := packages(t, "..")
	var undocumented []string
	for _, p := range pkgs {
		if p.synopsis == "" {
			undocumented = append(undocumented, p.dir)
		}
	}
	if len(undocumented) > 0 {
		t.Errorf("packages without a doc comment (the table shows its first sentence): %s", strings.Join(undocumented, ", "))
	}
	const path = "architecture.md"
	md, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(md, []byte(beginTable)), bytes.Index(md, []byte(endTable))
	if i < 0 || j < i {
		t.Fatalf("%s: the markers of the generated package table are missing:\n%s\n%s", path, beginTable, endTable)
	}
	want := table(pkgs)
	got := string(md[i : j+len(endTable)])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, md[:i]...), want...), md[j+len(endTable):]...)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(got, -1) {
		have[m[1]] = true
	}
	var missing []string
	for _, p := range pkgs {
		if !have[p.dir] {
			missing = append(missing, p.dir)
		}
	}
	t.Errorf("docs/%s: the package table is out of date (missing: %v); run go test ./docs -run TestArchitecturePackages -update", path, missing)
}

// TestCitedDocsExist: a comment that points the reader at docs/<name>.md points
// at a file that is there.
func TestCitedDocsExist(t *testing.T) {
	cite := regexp.MustCompile(`docs/[A-Za-z0-9_.-]+\.md`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "node_modules" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range cite.FindAllString(string(src), -1) {
			if _, err := os.Stat(filepath.Join("..", m)); err != nil {
				t.Errorf("%s cites %s, which does not exist", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
