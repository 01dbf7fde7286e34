package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiffd/internal/errdefs"
)

// sandbox lays out base/dest (the extraction target) next to base/outside,
// which holds a sentinel file, a sentinel directory and nothing else.
type sandbox struct {
	base, dest, outside string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	s := sandbox{base: base, dest: filepath.Join(base, "dest"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.dest, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "secret"), []byte("sentinel"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1000000000, 0)
	for _, p := range []string{filepath.Join(s.outside, "secret"), filepath.Join(s.outside, "sub"), s.outside} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// checkUntouched fails if anything outside dest changed: the sentinel
// tree (content, modes, owners, times, links, xattrs) and base's listing.
func (s sandbox) checkUntouched(t testing.TB, before map[string]fileState) {
	t.Helper()
	if d := diffSnapshots(before, snapshot(t, s.outside, true)); len(d) > 0 {
		t.Errorf("outside changed:\n%s", strings.Join(d, "\n"))
	}
	ents, err := os.ReadDir(s.base)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("base holds %v, want only dest and outside", names)
	}
}

type hostileCase struct {
	name    string
	entries func(s sandbox) []ent
	opts    ApplyOptions
	wantErr bool
	// check runs on success or failure to verify what dest holds.
	check func(t *testing.T, s sandbox)
}

func hostileCases() []hostileCase {
	withX := func(e ent, k, v string) ent { e.xattrs = map[string]string{k: v}; return e }
	withMode := func(e ent, m int64) ent { e.mode = m; return e }
	return []hostileCase{
		{name: "dotdot", entries: func(s sandbox) []ent { return []ent{reg("../escape", "x")} }, wantErr: true},
		{name: "dotdot inside", entries: func(s sandbox) []ent { return []ent{reg("a/../../escape", "x")} }, wantErr: true},
		{name: "dotdot into outside", entries: func(s sandbox) []ent { return []ent{reg("../outside/secret", "pwned")} }, wantErr: true},
		{name: "bare dotdot dir", entries: func(s sandbox) []ent { return []ent{dirEnt("..")} }, wantErr: true},
		{name: "root as file", entries: func(s sandbox) []ent { return []ent{reg(".", "x")} }, wantErr: true},
		{
			name:    "absolute name is relative",
			entries: func(s sandbox) []ent { return []ent{reg(filepath.Join(s.outside, "secret"), "pwned")} },
			check: func(t *testing.T, s sandbox) {
				b, err := os.ReadFile(filepath.Join(s.dest, s.outside, "secret"))
				if err != nil || string(b) != "pwned" {
					t.Errorf("dest copy of absolute name = %q, %v; want pwned", b, err)
				}
			},
		},
		{
			name:    "write through absolute symlink",
			entries: func(s sandbox) []ent { return []ent{symlinkEnt("link", s.outside), reg("link/evil", "x")} },
			wantErr: true,
		},
		{
			name:    "write through absolute symlink to file",
			entries: func(s sandbox) []ent { return []ent{symlinkEnt("link", s.outside), reg("link/secret", "pwned")} },
			wantErr: true,
		},
		{
			name: "dir through absolute symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("link", s.outside), dirEnt("link/sub/"), reg("link/sub/x", "x")}
			},
			wantErr: true,
		},
		{
			name: "in-tree relative symlink is followed in the tree",
			entries: func(s sandbox) []ent {
				return []ent{dirEnt("real/"), symlinkEnt("alias", "real"), reg("alias/f", "in")}
			},
			check: func(t *testing.T, s sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.dest, "real", "f")); err != nil || string(b) != "in" {
					t.Errorf("real/f = %q, %v; want in", b, err)
				}
			},
		},
		{
			name:    "relative symlink climbing out",
			entries: func(s sandbox) []ent { return []ent{symlinkEnt("rel", "../outside")} },
			wantErr: true,
		},
		{
			name:    "nested relative symlink climbing out",
			entries: func(s sandbox) []ent { return []ent{symlinkEnt("a/b/rel", "../../../outside/secret")} },
			wantErr: true,
		},
		{
			name: "symlink target is stored, not followed",
			entries: func(s sandbox) []ent {
				return []ent{withX(symlinkEnt("sl", filepath.Join(s.outside, "secret")), "user.evil", "1")}
			},
			check: func(t *testing.T, s sandbox) {
				if got, err := os.Readlink(filepath.Join(s.dest, "sl")); err != nil || got != filepath.Join(s.outside, "secret") {
					t.Errorf("Readlink(sl) = %q, %v", got, err)
				}
			},
		},
		{
			name: "file replaces planted symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", filepath.Join(s.outside, "secret")), withMode(reg("sl", "pwned"), 0o777)}
			},
			check: func(t *testing.T, s sandbox) {
				fi, err := os.Lstat(filepath.Join(s.dest, "sl"))
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("sl = %v, %v; want a regular file", fi, err)
				}
			},
		},
		{
			name: "dir replaces planted symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", s.outside), withMode(dirEnt("sl/"), 0o700), reg("sl/secret", "pwned")}
			},
			check: func(t *testing.T, s sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.dest, "sl", "secret")); err != nil || string(b) != "pwned" {
					t.Errorf("sl/secret = %q, %v", b, err)
				}
			},
		},
		{
			name: "dir times after dir became a symlink",
			entries: func(s sandbox) []ent {
				return []ent{dirEnt("d/"), symlinkEnt("d", s.outside)}
			},
		},
		{
			name:    "hardlink climbing out",
			entries: func(s sandbox) []ent { return []ent{hardlinkEnt("h", "../outside/secret")} },
			wantErr: true,
		},
		{
			name:    "hardlink absolute outside",
			entries: func(s sandbox) []ent { return []ent{hardlinkEnt("h", filepath.Join(s.outside, "secret"))} },
			wantErr: true,
		},
		{
			name: "hardlink through symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("link", s.outside), hardlinkEnt("h", "link/secret")}
			},
			wantErr: true,
		},
		{
			name: "hardlink to symlink pointing out",
			entries: func(s sandbox) []ent {
				return []ent{
					symlinkEnt("sl", filepath.Join(s.outside, "secret")),
					withX(withMode(hardlinkEnt("h", "sl"), 0o4777), "user.evil", "1"),
				}
			},
			check: func(t *testing.T, s sandbox) {
				fi, err := os.Lstat(filepath.Join(s.dest, "h"))
				if err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("h = %v, %v; want the symlink itself", fi, err)
				}
			},
		},
		{
			name: "whiteout through symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", s.outside), reg("sl/.wh.secret", "")}
			},
		},
		{
			name: "overlay whiteout through symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", s.outside), reg("sl/.wh.secret", "")}
			},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			wantErr: true,
		},
		{
			name: "opaque through symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", s.outside), reg("sl/.wh..wh..opq", "")}
			},
			wantErr: true,
		},
		{
			name: "overlay opaque through symlink",
			entries: func(s sandbox) []ent {
				return []ent{symlinkEnt("sl", s.outside), reg("sl/.wh..wh..opq", "")}
			},
			opts:    ApplyOptions{WhiteoutFormat: OverlayWhiteouts},
			wantErr: true,
		},
		{
			name:    "whiteout climbing out",
			entries: func(s sandbox) []ent { return []ent{reg("../outside/.wh.secret", "")} },
			wantErr: true,
		},
		{name: "invalid whiteout", entries: func(s sandbox) []ent { return []ent{reg("d/.wh.", "")} }, wantErr: true},
		{name: "invalid whiteout dot", entries: func(s sandbox) []ent { return []ent{reg(".wh..", "")} }, wantErr: true},
		{name: "nested aufs meta", entries: func(s sandbox) []ent { return []ent{reg("d/.wh..wh.plnk", "")} }, wantErr: true},
		{
			name:    "aufs meta at top is skipped",
			entries: func(s sandbox) []ent { return []ent{dirEnt(".wh..wh.plnk/"), reg(".wh..wh.plnk/1234", "x")} },
			check: func(t *testing.T, s sandbox) {
				if ents, _ := os.ReadDir(s.dest); len(ents) != 0 {
					t.Errorf("dest has %d entries, want none", len(ents))
				}
			},
		},
		{
			name: "device skipped when asked",
			entries: func(s sandbox) []ent {
				return []ent{{name: "null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3}}
			},
			opts: ApplyOptions{SkipDevices: true},
			check: func(t *testing.T, s sandbox) {
				if _, err := os.Lstat(filepath.Join(s.dest, "null")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("Lstat(null) = %v, want not exist", err)
				}
			},
		},
		{
			name:    "component too long",
			entries: func(s sandbox) []ent { return []ent{reg(strings.Repeat("a", 300), "x")} },
			wantErr: true,
		},
		{
			name:    "name too long",
			entries: func(s sandbox) []ent { return []ent{reg(strings.Repeat("abcdefg/", 600)+"f", "x")} },
			wantErr: true,
		},
		{
			name:    "deeply nested",
			entries: func(s sandbox) []ent { return []ent{reg(strings.Repeat("a/", 1500)+"f", "deep")} },
			check: func(t *testing.T, s sandbox) {
				if b, err := os.ReadFile(filepath.Join(s.dest, strings.Repeat("a/", 1500)+"f")); err != nil || string(b) != "deep" {
					t.Errorf("deep file = %q, %v", b, err)
				}
			},
		},
	}
}

func runHostile(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			before := snapshot(t, s.outside, true)
			_, err := Apply(context.Background(), s.dest, bytes.NewReader(makeTar(t, tc.entries(s)...)), tc.opts)
			if (err != nil) != tc.wantErr {
				t.Errorf("Apply() error = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
			s.checkUntouched(t, before)
		})
	}
}

func TestApplyHostile(t *testing.T) {
	runHostile(t)
}

// TestApplyHostileWithoutOpenat2 runs the same attacks through the walker
// used on kernels before 5.6, which refuses every symlink in a parent path.
func TestApplyHostileWithoutOpenat2(t *testing.T) {
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(false) })
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			before := snapshot(t, s.outside, true)
			_, err := Apply(context.Background(), s.dest, bytes.NewReader(makeTar(t, tc.entries(s)...)), tc.opts)
			// The walker may refuse more than openat2 does (any symlink
			// in a parent path), but never less.
			if tc.wantErr && err == nil {
				t.Errorf("Apply() succeeded, want error")
			}
			s.checkUntouched(t, before)
		})
	}
}

func TestApplyBreakoutErrorText(t *testing.T) {
	s := newSandbox(t)
	_, err := Apply(context.Background(), s.dest, bytes.NewReader(makeTar(t, reg("../escape", "x"))), ApplyOptions{})
	if err == nil || err.Error() != `"../escape" is outside of "/"` {
		t.Errorf("Apply(../escape) error = %v, want dockerd's breakout text", err)
	}
	if !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("Apply(../escape) error kind: %v is not invalid parameter", err)
	}
}

// TestApplyLyingSize feeds a header that claims a terabyte followed by a few
// bytes: extraction must fail on the short data, not allocate or write it.
func TestApplyLyingSize(t *testing.T) {
	s := newSandbox(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("short")); err != nil {
		t.Fatal(err)
	}
	// No Close: the archive ends after five bytes of data.
	_, err := Apply(context.Background(), s.dest, bytes.NewReader(buf.Bytes()), ApplyOptions{})
	if err == nil {
		t.Fatal("Apply(1 TiB header, 5 bytes) succeeded, want error")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(s.dest, "big"), &st); err == nil && st.Blocks > 8 {
		t.Errorf("big uses %d blocks, want at most a few", st.Blocks)
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "a/b", want: "a/b"},
		{in: "./a/", want: "a"},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "/../x", want: "x"},
		{in: "", want: "."},
		{in: "./", want: "."},
		{in: "..", wantErr: true},
		{in: "../x", wantErr: true},
		{in: "a/../../x", wantErr: true},
		{in: "a\x00b", wantErr: true},
		{in: strings.Repeat("x", 5000), wantErr: true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("cleanName(%.40q) = %q, %v; want %q, wantErr %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestClimbsOut(t *testing.T) {
	tests := []struct {
		parent, target string
		want           bool
	}{
		{".", "usr/bin", false},
		{".", "/etc", false},
		{".", "..", true},
		{"usr/lib", "../../lib/x", false},
		{"usr/lib", "../../../lib/x", true},
		{"a", "b/../../..", true},
		{"a", "./../b", false},
	}
	for _, tt := range tests {
		if got := climbsOut(tt.parent, tt.target); got != tt.want {
			t.Errorf("climbsOut(%q, %q) = %v, want %v", tt.parent, tt.target, got, tt.want)
		}
	}
}

func TestApplyCancelled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, s.dest, bytes.NewReader(makeTar(t, reg("f", "x"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply(cancelled) = %v, want context.Canceled", err)
	}
}
