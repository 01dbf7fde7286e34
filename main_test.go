package main

import (
	"debug/elf"
	"os/exec"
	"strings"
	"testing"

	"skiffd/internal/skifftest"
)

func TestMain(m *testing.M) { skifftest.Main(m) }

// TestDependencies keeps the promise that skiffd is the standard library
// plus its own code, and the layering DESIGN.md sets: the API modules never
// reach into the engine or its stores.
func TestDependencies(t *testing.T) {
	root, err := skifftest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) []string {
		cmd := exec.Command("go", append([]string{"list"}, args...)...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		var pkgs []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			// -test lists variants as "pkg [pkg.test]"; the first field names the package.
			if f := strings.Fields(line); len(f) > 0 {
				pkgs = append(pkgs, f[0])
			}
		}
		return pkgs
	}
	std := map[string]bool{}
	for _, p := range list("std") {
		std[p] = true
	}
	for _, p := range list("-deps", "-test", ".", "./...") {
		if std[p] || p == "skiffd" || strings.HasPrefix(p, "skiffd/internal/") || strings.HasPrefix(p, "skiffd.test") {
			continue
		}
		if strings.HasPrefix(p, "vendor/") || strings.HasPrefix(p, "internal/") {
			continue // the standard library's own internals
		}
		t.Errorf("dependency outside the standard library: %s", p)
	}

	forbidden := []string{"skiffd/internal/engine", "skiffd/internal/events", "skiffd/internal/image", "skiffd/internal/layer",
		"skiffd/internal/container", "skiffd/internal/volume", "skiffd/internal/network", "skiffd/internal/runtime"}
	for _, pkg := range list("./internal/api/...") {
		for _, dep := range list("-deps", pkg) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s imports %s: API modules must speak internal/api/types, not the engine", pkg, dep)
				}
			}
		}
	}
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
