package reference

import (
	"errors"
	"testing"

	"skiffd/internal/errdefs"
)

func TestParseImageRef(t *testing.T) {
	tests := []struct {
		in       string
		id       Digest
		named    string // Named.String()
		prefix   string
		notFound string // NotFound().Error()
	}{
		{in: hexB, id: digestB, notFound: "No such image: " + digestB},
		{in: digestB, id: digestB, notFound: "No such image: " + digestB},
		{in: "busybox", named: "docker.io/library/busybox:latest", notFound: "No such image: busybox:latest"},
		{in: "trace-nonexistent:1", named: "docker.io/library/trace-nonexistent:1", notFound: "No such image: trace-nonexistent:1"},
		{in: "localhost:5000/trace/tagged:2", named: "localhost:5000/trace/tagged:2", notFound: "No such image: localhost:5000/trace/tagged:2"},
		{in: "busybox@" + digestA, named: "docker.io/library/busybox@" + digestA, notFound: "No such image: busybox@" + digestA},
		{in: "busybox:1@" + digestA, named: "docker.io/library/busybox:1@" + digestA, notFound: "No such image: busybox:1@" + digestA},
		// Short hex is first a name, then an ID prefix.
		{in: "462dad", named: "docker.io/library/462dad:latest", prefix: "462dad", notFound: "No such image: 462dad:latest"},
		{in: "4", named: "docker.io/library/4:latest", prefix: "4", notFound: "No such image: 4:latest"},
		{in: hexB[:63], named: "docker.io/library/" + hexB[:63] + ":latest", prefix: hexB[:63], notFound: "No such image: " + hexB[:63] + ":latest"},
		{in: "sha256:462dad", named: "docker.io/library/sha256:462dad", prefix: "462dad", notFound: "No such image: sha256:462dad"},
		// Hex-looking names that no ID can start with.
		{in: "462dad:latest", named: "docker.io/library/462dad:latest", notFound: "No such image: 462dad:latest"},
		{in: "me/462dad", named: "docker.io/me/462dad:latest", notFound: "No such image: me/462dad:latest"},
		{in: "sha256:" + hexB + "0", named: "docker.io/library/sha256:" + hexB + "0", notFound: "No such image: sha256:" + hexB + "0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseImageRef(tt.in)
			if err != nil {
				t.Fatalf("ParseImageRef(%q) error = %v", tt.in, err)
			}
			if r.ID != tt.id || r.Named.String() != tt.named || r.Prefix != tt.prefix {
				t.Errorf("ParseImageRef(%q) = {ID:%q Named:%q Prefix:%q}, want {ID:%q Named:%q Prefix:%q}",
					tt.in, r.ID, r.Named, r.Prefix, tt.id, tt.named, tt.prefix)
			}
			if r.IsID() != (tt.id != "") {
				t.Errorf("ParseImageRef(%q).IsID() = %v, want %v", tt.in, r.IsID(), tt.id != "")
			}
			err = r.NotFound()
			if err.Error() != tt.notFound || !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("ParseImageRef(%q).NotFound() = %q (%v), want %q (not found)", tt.in, err, errdefs.KindOf(err), tt.notFound)
			}
		})
	}
}

func TestParseImageRefInvalid(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "invalid reference format"},
		{"462DAD", "invalid reference format: repository name (library/462DAD) must be lowercase"},
		{"Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{"sha256:" + hexA[:40] + "!", "invalid reference format"},
		{"busybox@sha256:" + hexA[:40], "invalid checksum digest length"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseImageRef(tt.in)
			if err == nil || err.Error() != tt.want || !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ParseImageRef(%q) = %+v, %v; want invalid parameter %q", tt.in, r, err, tt.want)
			}
		})
	}
}
