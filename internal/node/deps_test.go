package node

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection keeps the control plane at the bottom of DESIGN.md's
// layering: store and node import only the topology model (and store), so
// every other part can build on them.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/firebreak/firebreak/"
	allowed := map[string][]string{
		".":        {"internal/store", "internal/topology"},
		"../store": {"internal/topology", "internal/yamlnode"},
		"../certs": {},
	}
	for dir, ok := range allowed {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, mod) {
					continue
				}
				rel := strings.TrimPrefix(p, mod)
				found := false
				for _, a := range ok {
					found = found || rel == a
				}
				if !found {
					t.Errorf("%s imports %s; allowed: %v", f, rel, ok)
				}
			}
		}
	}
}
