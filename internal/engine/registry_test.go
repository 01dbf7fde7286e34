package engine

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"skiffd/internal/errdefs"

	"skiffd/internal/api/types"
	"skiffd/internal/distribution"
)

// TestProgressBar checks the bars against lines dockerd sent in
// /work/shared/api-traces/pull-ok.txt.
func TestProgressBar(t *testing.T) {
	tests := []struct {
		current, total int64
		want           string
	}{
		{32768, 1028093, "[=>                                                 ]  32.77kB/1.028MB"},
		{367, 367, "[==================================================>]     367B/367B"},
		{360448, 1028093, "[=================>                                 ]  360.4kB/1.028MB"},
		{98304, 1028093, "[====>                                              ]   98.3kB/1.028MB"},
		{1015808, 1028093, "[=================================================> ]  1.016MB/1.028MB"},
		{0, 0, ""},
	}
	for _, tt := range tests {
		if got := progressBar(tt.current, tt.total); got != tt.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tt.current, tt.total, got, tt.want)
		}
	}
}

// TestProgressMessageJSON checks the wire shape of the per-layer messages.
func TestProgressMessageJSON(t *testing.T) {
	var got []string
	p := progressFunc(func(m types.ProgressMessage) {
		b, _ := json.Marshal(m)
		got = append(got, string(b))
	})
	p.step("c3542e889c06", "Pull complete")
	p.bytes("c3542e889c06", "Downloading", 367, 367)
	p(types.ProgressMessage{Status: "Pulling from trace/pulled", ID: "1"})
	want := []string{
		`{"status":"Pull complete","progressDetail":{},"id":"c3542e889c06"}`,
		`{"status":"Downloading","progressDetail":{"current":367,"total":367},"progress":"[==================================================\u003e]     367B/367B","id":"c3542e889c06"}`,
		`{"status":"Pulling from trace/pulled","id":"1"}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestDecompress checks that the content's magic picks the decompressor,
// and that zstd, by magic or media type, is refused until its decoder is
// wired.
func TestDecompress(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("tar bytes"))
	zw.Close()
	tests := []struct {
		name, mediaType string
		in              []byte
		want            string
		err             error
	}{
		{"gzip", "application/vnd.docker.image.rootfs.diff.tar.gzip", gz.Bytes(), "tar bytes", nil},
		{"gzip named plain", "application/vnd.oci.image.layer.v1.tar", gz.Bytes(), "tar bytes", nil},
		{"plain", "application/vnd.oci.image.layer.v1.tar", []byte("tar bytes"), "tar bytes", nil},
		// One zstd frame: single segment, a one-byte content size, one raw last block.
		{"zstd", "application/vnd.oci.image.layer.v1.tar+zstd", append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 9, 0x49, 0, 0}, "tar bytes"...), "tar bytes", nil},
		{"zstd named gzip", "application/vnd.oci.image.layer.v1.tar+gzip", append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 9, 0x49, 0, 0}, "tar bytes"...), "tar bytes", nil},
		{"zstd corrupt", "application/vnd.oci.image.layer.v1.tar+zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff}, "", errdefs.ErrInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, closeFn, err := decompress(bytes.NewReader(tt.in))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("decompress = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			got, err := io.ReadAll(r)
			if err != nil || string(got) != tt.want {
				t.Errorf("decompressed %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRegistryInfo(t *testing.T) {
	r := newRegistryState(Options{Registry: distribution.Config{Mirrors: []string{"https://m.example"}, InsecureRegistries: []string{"10.1.0.0/16", "reg.local:5000"}}})
	got := r.registryInfo()
	b, _ := json.Marshal(got)
	want := `{"InsecureRegistryCIDRs":["127.0.0.0/8","::1/128","10.1.0.0/16"],"IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":["https://m.example/"],"Secure":true,"Official":true},"reg.local:5000":{"Name":"reg.local:5000","Mirrors":[],"Secure":false,"Official":false}},"Mirrors":["https://m.example/"]}`
	if string(b) != want {
		t.Errorf("registryInfo = %s\nwant %s", b, want)
	}
}
