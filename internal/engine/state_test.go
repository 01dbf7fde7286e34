package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNoPackageState keeps the engine's state in the Engine: a
// package-level variable is either a table or sentinel nobody writes, or
// it fails here (issue 10: exec and volume stores once lived in global
// maps keyed by the Engine).
func TestNoPackageState(t *testing.T) {
	readOnly := map[string]string{
		"errDetached":          "sentinel error",
		"ipcSysctls":           "lookup table",
		"acceptedImageFilters": "lookup table",
		"acceptedPruneFilters": "lookup table",
		"rlimitNames":          "lookup table",
		"errPushDone":          "sentinel error",
		"psColumns":            "lookup table",
		"notYetWarnings":       "lookup table",
		"dockerdNetSysctls":    "lookup table",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if id.Name == "_" {
						continue
					}
					found = append(found, id.Name)
					if _, ok := readOnly[id.Name]; !ok {
						t.Errorf("%s: package-level variable %s: state belongs in the Engine", fset.Position(id.Pos()), id.Name)
					}
				}
			}
		}
	}
	for name := range readOnly {
		if !slices.Contains(found, name) {
			t.Logf("%s is gone: drop it from the list", name)
		}
	}
}
