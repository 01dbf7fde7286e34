package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

func TestMain(m *testing.M) { skifftest.Main(m) }

// TestDependencies keeps the promise that skiffd is the standard library
// plus its own code, and the import rules of DESIGN.md §1, in both
// directions:
//   - the API modules (internal/api/...) reach no store or mechanism: they
//     import other API packages and the leaves only;
//   - no package but main (and its tests) imports a handler package
//     internal/api/<module>, nor their helper internal/api/wire: the engine
//     and everything below it speak internal/api/types;
//   - the leaves import the standard library, errdefs and sys only;
//   - raw syscalls and their numbers are in internal/sys alone.
func TestDependencies(t *testing.T) {
	root, err := skifftest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkgs := listPackages(t, root)
	if len(pkgs) == 0 {
		t.Fatal("go list named no packages")
	}
	for _, v := range checkImports(pkgs) {
		t.Error(v)
	}
	v, err := checkRawSyscalls(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range v {
		t.Error(v)
	}
}

const mod = "skiffd/internal/"

// leaves are the packages at the bottom of DESIGN.md's layers, each with
// the internal packages it may import besides the standard library.
// api/types imports filters for ContainerListOptions.Filters, as moby's
// api/types does; filters is itself a leaf.
var leaves = map[string][]string{
	"errdefs":          nil,
	"api/types":        {"errdefs", "filters"},
	"stdcopy":          {"errdefs"},
	"filters":          {"errdefs"},
	"reference":        {"errdefs"},
	"archive":          {"errdefs", "sys", "zstd"},
	"zstd":             {},
	"websocket":        {},
	"metrics/promtext": {},
	"netlink":          {"errdefs", "sys"},
	"sys":              nil,
	"userdb":           {"errdefs"},
	"atomicfile":       {"errdefs"},
	"timestamp":        {"errdefs"},
	"memtrim":          {"sys"},
}

// middlewareSide are the packages of the API server's middleware chain
// (DESIGN.md: "authz, audit, metrics"): they may use wire, as handlers do,
// and like them reach no engine, store or mechanism.
var middlewareSide = map[string]bool{"audit": true, "authz": true, "policy": true, "metrics": true}

// isLeaf reports whether name (below skiffd/internal/) is a leaf.
func isLeaf(name string) bool {
	_, ok := leaves[name]
	return ok
}

// goPackage is what TestDependencies reads of `go list -json`.
type goPackage struct {
	ImportPath string   // "p", or "p [q.test]" for a test variant
	Standard   bool     // part of the standard library
	Imports    []string // direct imports
	Deps       []string // transitive imports
}

// listPackages lists every package skiffd builds, with its tests, and
// their dependencies.
func listPackages(t *testing.T, root string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Standard,Imports,Deps", "-deps", "-test", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPackage
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

// handlerPackage reports whether path is an API package other than
// api/types: a handler module or wire, the handlers' helper.
func handlerPackage(path string) bool {
	return strings.HasPrefix(path, mod+"api/") && path != mod+"api/types"
}

// checkImports returns a line for each import that breaks DESIGN.md's
// rules (see TestDependencies).
func checkImports(pkgs []goPackage) []string {
	std := map[string]bool{}
	for _, p := range pkgs {
		if p.Standard {
			std[p.ImportPath] = true
		}
	}
	var bad []string
	for _, p := range pkgs {
		if p.Standard {
			continue
		}
		path, _, _ := strings.Cut(p.ImportPath, " ")
		if strings.HasSuffix(path, ".test") {
			continue // a test's generated main; its package's test variant is checked
		}
		if path != "skiffd" && !strings.HasPrefix(path, mod) {
			bad = append(bad, "dependency outside the standard library: "+p.ImportPath)
			continue
		}
		if path == "skiffd" {
			continue // main wires the API modules to the engine
		}
		inAPI := strings.HasPrefix(path, mod+"api/")
		// The API server's middleware packages (middlewareSide) sit in the
		// HTTP layer with the API modules: the same rules, and they may
		// use wire.
		mw := middlewareSide[strings.TrimPrefix(path, mod)]
		for _, dep := range p.Deps {
			dep, _, _ = strings.Cut(dep, " ") // a test variant is its package
			if std[dep] || !strings.HasPrefix(dep, mod) {
				continue
			}
			name := strings.TrimPrefix(dep, mod)
			switch {
			case (inAPI || mw) && !strings.HasPrefix(name, "api/") && !isLeaf(name):
				bad = append(bad, fmt.Sprintf("%s imports %s: the API modules speak internal/api/types, not the engine, its stores or mechanisms", p.ImportPath, dep))
			case !inAPI && handlerPackage(dep) && !(mw && dep == mod+"api/wire"):
				bad = append(bad, fmt.Sprintf("%s imports %s: only main sees the handler packages; share types through internal/api/types", p.ImportPath, dep))
			}
		}
		if inAPI && path != mod+"api/wire" && path != mod+"api/types" {
			for _, dep := range p.Imports {
				dep, _, _ = strings.Cut(dep, " ")
				if handlerPackage(dep) && dep != mod+"api/wire" && dep != path {
					bad = append(bad, fmt.Sprintf("%s imports %s: one API module does not import another", p.ImportPath, dep))
				}
			}
		}
		if allowed, ok := leaves[strings.TrimPrefix(path, mod)]; ok && p.ImportPath == path {
			for _, dep := range p.Imports {
				if !std[dep] && !slices.Contains(allowed, strings.TrimPrefix(dep, mod)) {
					bad = append(bad, fmt.Sprintf("leaf %s imports %s: leaves import the standard library and %v only", path, dep, allowed))
				}
			}
		}
	}
	return bad
}

// rawSyscallExempt are the files outside internal/sys that may make raw
// system calls: the seccomp tests probe the loaded filter with system call
// numbers the syscall package does not know (x32, and the numbers of the
// compiled profile's own table), through nothing that could itself be
// filtered or interpreted.
var rawSyscallExempt = regexp.MustCompile(`^internal/runtime/seccomp/[^/]*_test\.go$`)

// checkRawSyscalls scans every Go file for calls of the syscall package's
// raw entry points (Syscall, Syscall6, RawSyscall, RawSyscall6,
// RawSyscallNoError) and uses of its SYS_ numbers outside internal/sys.
func checkRawSyscalls(root string) ([]string, error) {
	var bad []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "internal/sys" || d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || rawSyscallExempt.MatchString(rel) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, v := range rawSyscalls(fset, f) {
			bad = append(bad, rel+":"+v)
		}
		return nil
	})
	return bad, err
}

// rawSyscalls returns the places in f that make a raw system call or name
// a system call number through the syscall package.
func rawSyscalls(fset *token.FileSet, f *ast.File) []string {
	local := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"syscall"` {
			local = "syscall"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
	}
	if local == "" || local == "_" {
		return nil
	}
	var bad []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != local {
			return true
		}
		switch name := sel.Sel.Name; {
		case name == "Syscall", name == "Syscall6", name == "RawSyscall", name == "RawSyscall6", name == "RawSyscallNoError":
			bad = append(bad, fmt.Sprintf("%d: syscall.%s: raw system calls belong in internal/sys", fset.Position(sel.Pos()).Line, name))
		case strings.HasPrefix(name, "SYS_"):
			bad = append(bad, fmt.Sprintf("%d: syscall.%s: system call numbers belong in internal/sys", fset.Position(sel.Pos()).Line, name))
		}
		return true
	})
	return bad
}

// TestStaticBinary: the daemon is one static binary, no dynamic loader.
func TestStaticBinary(t *testing.T) {
	f, err := elf.Open(skifftest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary imports shared libraries %v", libs)
	}
}
