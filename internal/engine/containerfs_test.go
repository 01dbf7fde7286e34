package engine

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"testing"

	"skiffd/internal/api/types"
)

// The file operations themselves are tested in package containerfs; the
// helpers here serve the engine's tests of cp, diff, export and commit
// against real containers (commit_test.go).

// tarOf builds a tar of entries; a regular entry's Linkname is its content.
func tarOf(t testing.TB, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = h.Linkname
			h.Linkname = ""
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name, body string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Linkname: body}
}

// tarNames lists a tar's entry names, failing on a malformed stream.
func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

// tarContents maps regular entries to their content.
func tarContents(t *testing.T, b []byte) map[string]string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		out[hdr.Name] = string(body)
	}
}

func changeStrings(cs []types.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%c %s", "CAD"[c.Kind], c.Path))
	}
	return out
}
