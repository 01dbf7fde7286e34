package engine

import (
	"archive/tar"
	"bytes"
	"fmt"
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

func changeStrings(cs []types.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%c %s", "CAD"[c.Kind], c.Path))
	}
	return out
}
