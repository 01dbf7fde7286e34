package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
)

// Environment switches that turn the test binary into the process the
// crash test kills (see TestMain).
const (
	crashPointEnv = "SKIFF_LAYER_CRASH_POINT"
	crashRootEnv  = "SKIFF_LAYER_CRASH_ROOT"
)

func TestMain(m *testing.M) {
	if point := os.Getenv(crashPointEnv); point != "" {
		crashChild(point, os.Getenv(crashRootEnv))
		os.Exit(2) // crashChild only returns on failure
	}
	os.Exit(m.Run())
}

// The generated layer of the crash test: large enough that killing it
// midway leaves real partial content.
const (
	crashFiles    = 64
	crashFileSize = 1 << 20
	crashMidway   = crashFiles / 2
)

// writeGenerated streams a layer of files regular files of size bytes each
// to w, in four directories, calling after(i) once file i is written.
// The content depends only on the file's number and offset, so the same
// call always produces the same tar.
func writeGenerated(w io.Writer, files, size int, after func(i int)) error {
	tw := tar.NewWriter(w)
	// File i holds byte ((i+j) mod 251)+1 at offset j: a window of pattern.
	const chunkSize = 64 << 10
	pattern := make([]byte, chunkSize+251)
	for j := range pattern {
		pattern[j] = byte(j%251) + 1
	}
	for i := range files {
		hdr := &tar.Header{Name: fmt.Sprintf("d%d/f%d", i%4, i), Typeflag: tar.TypeReg, Mode: 0o644,
			Size: int64(size), ModTime: testTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		chunk := pattern[i%251 : i%251+chunkSize]
		for n := 0; n < size; {
			c := min(chunkSize, size-n)
			if _, err := tw.Write(chunk[:c]); err != nil {
				return err
			}
			n += c
		}
		if after != nil {
			after(i)
		}
	}
	return tw.Close()
}

// crashChild registers the generated layer in the store at root and, at
// the named point, tells its parent "ready" on stdout and waits to be
// killed.
func crashChild(point, root string) {
	ready := func() {
		fmt.Println("ready")
		select {}
	}
	s, err := Open(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	switch point {
	case "before-rename":
		testHookBeforeRename = ready
	case "after-rename":
		testHookAfterRename = ready
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeGenerated(pw, crashFiles, crashFileSize, func(i int) {
			if point == "unpack" && i == crashMidway {
				ready()
			}
		}))
	}()
	_, err = s.Register(context.Background(), pr, "", "")
	fmt.Fprintf(os.Stderr, "Register returned %v instead of waiting to be killed at %s\n", err, point)
}

func TestCrashDuringRegister(t *testing.T) {
	needRoot(t)
	h := sha256.New()
	if err := writeGenerated(h, crashFiles, crashFileSize, nil); err != nil {
		t.Fatal(err)
	}
	diffID := "sha256:" + hex.EncodeToString(h.Sum(nil))

	for _, tc := range []struct {
		point      string
		registered bool // whether the layer survives the kill
	}{
		{"unpack", false},
		{"before-rename", false},
		{"after-rename", true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashPointEnv+"="+tc.point, crashRootEnv+"="+root)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			t.Cleanup(func() {
				if !killed {
					cmd.Process.Kill()
					cmd.Wait()
				}
			})
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if line != "ready\n" {
				t.Fatalf("child said %q, %v; want ready", line, err)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			killed = true
			if !tc.registered {
				if entries, err := os.ReadDir(root); err != nil || len(entries) == 0 {
					t.Fatalf("store root after kill = %v, %v; want the interrupted registration's directory", entries, err)
				}
			}

			s, err := Open(root)
			if err != nil {
				t.Fatalf("Open after kill: %v", err)
			}
			if l := leftovers(t, s); len(l) != 0 {
				t.Errorf("Open left temporary entries: %v", l)
			}
			list := s.List()
			if tc.registered {
				if len(list) != 1 || list[0].DiffID != diffID {
					t.Fatalf("List() after kill = %+v, want the layer %s", list, diffID)
				}
			} else {
				if len(list) != 0 {
					t.Errorf("List() after kill = %+v, want no layer", list)
				}
				entries, err := os.ReadDir(root)
				if err != nil || len(entries) != 0 {
					t.Errorf("store root after kill and Open = %v, %v, want empty", entries, err)
				}
			}

			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeGenerated(pw, crashFiles, crashFileSize, nil)) }()
			l, err := s.Register(context.Background(), pr, "", diffID)
			pr.Close() // unblocks the generator when the layer was there already
			if err != nil || l.DiffID != diffID {
				t.Fatalf("Register after kill = %+v, %v, want diffID %s", l, err, diffID)
			}
			h := sha256.New()
			if err := s.WriteTar(context.Background(), l.ChainID, h); err != nil {
				t.Fatalf("WriteTar: %v", err)
			}
			if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
				t.Errorf("sha256 of WriteTar = %s, want %s", got, diffID)
			}
		})
	}
}
