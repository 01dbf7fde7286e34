package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"skiffd/internal/errdefs"
)

// sparseBomb is a PAX (GNU 1.0) sparse entry whose few bytes of map expand
// to size bytes of zeros. archive/tar will not write sparse records, so the
// extended header is written as a plain file and retyped to 'x'.
func sparseBomb(t *testing.T, size int64) []byte {
	t.Helper()
	rec := func(k, v string) string {
		// A PAX record's length counts its own digits.
		body := " " + k + "=" + v + "\n"
		n := len(body) + 1
		for len(strconv.Itoa(n))+len(body) != n {
			n++
		}
		return strconv.Itoa(n) + body
	}
	records := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") +
		rec("GNU.sparse.name", "bomb") + rec("GNU.sparse.realsize", strconv.FormatInt(size, 10))
	// The sparse map, one empty data region at the very end, leads the data.
	sparseMap := "1\n" + strconv.FormatInt(size, 10) + "\n0\n"
	sparseMap += strings.Repeat("\x00", 512-len(sparseMap))

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{{"PaxHeaders/bomb", records}, {"GNUSparseFile.0/bomb", sparseMap}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func TestApplySparse(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		wantErr bool
	}{
		{"small", 1 << 20, false},
		{"bomb", 1 << 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			tr := tar.NewReader(bytes.NewReader(sparseBomb(t, tt.size)))
			if hdr, err := tr.Next(); err != nil || hdr.Size != tt.size || !isSparse(hdr) {
				t.Fatalf("test archive reads as %+v, %v; want a sparse entry of %d bytes", hdr, err, tt.size)
			}
			_, err := Apply(context.Background(), s.dest, bytes.NewReader(sparseBomb(t, tt.size)), ApplyOptions{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Apply(sparse %d) error = %v, wantErr %v", tt.size, err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("Apply(sparse) error %v is not invalid parameter", err)
			}
			if !tt.wantErr {
				var st syscall.Stat_t
				if err := syscall.Stat(filepath.Join(s.dest, "bomb"), &st); err != nil || st.Size != tt.size || st.Blocks > 8 {
					t.Errorf("bomb: size %d blocks %d (%v); want size %d written as a hole", st.Size, st.Blocks, err, tt.size)
				}
			}
		})
	}
}
