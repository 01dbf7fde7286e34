package zstd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"testing"
	"testing/iotest"
)

// zstdTool returns the path of the reference `zstd` program; .ci/run
// installs it, so its absence is a failure, not a skip.
func zstdTool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("zstd")
	if err != nil {
		t.Fatalf("the reference zstd tool is required (apt-get install zstd): %v", err)
	}
	return p
}

// compress runs the zstd tool on in with args and returns its output.
func compress(t testing.TB, in []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(zstdTool(t), append([]string{"-c", "-q"}, args...)...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstd %v: %v: %s", args, err, stderr.Bytes())
	}
	return out
}

// toolDecompress runs `zstd -d` on in and reports its output and whether
// it succeeded.
func toolDecompress(t testing.TB, in []byte) ([]byte, bool) {
	t.Helper()
	cmd := exec.Command(zstdTool(t), "-d", "-c", "-q", "--memory=128MB")
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("zstd -d: %v", err)
	}
	return out, err == nil
}

func decodeAll(in []byte) ([]byte, error) {
	zr, err := NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// mixed returns n bytes alternating compressible text, repeats at many
// distances and incompressible runs, like a layer of binaries and text.
func mixed(n int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"usr/", "lib/", "bin/", "etc/", "share/", "x86_64-linux-gnu", ".so.", "\x00\x00\x00\x00",
		"ustar\x0000", "0000644\x00", "#!/bin/sh\n", "return nil\n", "func ", "if err != nil {\n"}
	out := make([]byte, 0, n)
	for len(out) < n {
		switch rng.Intn(4) {
		case 0: // random bytes
			k := rng.Intn(4096)
			for i := 0; i < k; i++ {
				out = append(out, byte(rng.Intn(256)))
			}
		case 1: // words
			k := rng.Intn(2000)
			for i := 0; i < k; i++ {
				out = append(out, words[rng.Intn(len(words))]...)
			}
		case 2: // copy from far back
			if len(out) > 0 {
				k := rng.Intn(20000)
				start := rng.Intn(len(out))
				for i := 0; i < k; i++ {
					out = append(out, out[start+i%(len(out)-start)])
				}
			}
		case 3: // runs
			out = append(out, bytes.Repeat([]byte{byte(rng.Intn(256))}, rng.Intn(3000))...)
		}
	}
	return out[:n]
}

func TestDecodeSmoke(t *testing.T) {
	for _, n := range []int{0, 1, 5, 100, 1000, 70000, 300000, 3 << 20} {
		in := mixed(n, int64(n))
		for _, lvl := range []string{"-1", "-3", "-19"} {
			t.Run(fmt.Sprintf("%d%s", n, lvl), func(t *testing.T) {
				c := compress(t, in, lvl)
				got, err := decodeAll(c)
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(got, in) {
					t.Fatalf("decoded %d bytes, differ from the %d-byte original", len(got), len(in))
				}
			})
		}
	}
	_ = iotest.OneByteReader
}
