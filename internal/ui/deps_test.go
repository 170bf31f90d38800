package ui

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection keeps DESIGN.md's layering: the UI imports the read
// model (internal/api/view) and auth, never the API server or cmd.
func TestImportDirection(t *testing.T) {
	files, _ := filepath.Glob("*.go")
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
			if p == "github.com/firebreak/firebreak/internal/api" || strings.HasPrefix(p, "github.com/firebreak/firebreak/cmd") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
