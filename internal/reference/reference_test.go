package reference

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"skiffd/internal/errdefs"
)

// Fixed test values: a digest, a 64-hex ID and a few near misses.
const (
	hexA    = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	hexB    = "462dad7a438b0efce113a4e12f442ce8fd45f55b829f14dbb005562e705f5bae"
	digestA = "sha256:" + hexA
	digestB = "sha256:" + hexB
)

func TestParseNormalizedNamedValid(t *testing.T) {
	tests := []struct {
		in                     string
		str                    string // String()
		domain, path           string
		tag, digest            string
		familiarName, familiar string
	}{
		// Docker Hub official images: "library/" and the domain are implied.
		{"busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "", "", "busybox", "busybox"},
		{"busybox:latest", "docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest", "", "busybox", "busybox:latest"},
		{"busybox:Latest_1.2-x", "docker.io/library/busybox:Latest_1.2-x", "docker.io", "library/busybox", "Latest_1.2-x", "", "busybox", "busybox:Latest_1.2-x"},
		{"busybox:_x", "docker.io/library/busybox:_x", "docker.io", "library/busybox", "_x", "", "busybox", "busybox:_x"},
		{"library/busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "", "", "busybox", "busybox"},
		{"docker.io/busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "", "", "busybox", "busybox"},
		{"docker.io/library/busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "", "", "busybox", "busybox"},
		{"index.docker.io/busybox", "docker.io/library/busybox", "docker.io", "library/busybox", "", "", "busybox", "busybox"},
		{"index.docker.io/library/debian:12", "docker.io/library/debian:12", "docker.io", "library/debian", "12", "", "debian", "debian:12"},
		{"ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", "", "", "ubuntu-12.04-base", "ubuntu-12.04-base"},
		// User namespaces on Docker Hub.
		{"me/box:1", "docker.io/me/box:1", "docker.io", "me/box", "1", "", "me/box", "me/box:1"},
		{"index.docker.io/me/box", "docker.io/me/box", "docker.io", "me/box", "", "", "me/box", "me/box"},
		{"docker.io/me/box", "docker.io/me/box", "docker.io", "me/box", "", "", "me/box", "me/box"},
		{"other/library", "docker.io/other/library", "docker.io", "other/library", "", "", "other/library", "other/library"},
		{"store/foo/bar", "docker.io/store/foo/bar", "docker.io", "store/foo/bar", "", "", "store/foo/bar", "store/foo/bar"},
		// "library/" is only dropped for single-component official names.
		{"library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar", "", "", "library/foo/bar", "library/foo/bar"},
		{"docker.io/library/foo/bar", "docker.io/library/foo/bar", "docker.io", "library/foo/bar", "", "", "library/foo/bar", "library/foo/bar"},
		// Separators in path components.
		{"docker-rules/docker", "docker.io/docker-rules/docker", "docker.io", "docker-rules/docker", "", "", "docker-rules/docker", "docker-rules/docker"},
		{"docker---rules/docker", "docker.io/docker---rules/docker", "docker.io", "docker---rules/docker", "", "", "docker---rules/docker", "docker---rules/docker"},
		{"dock__er/docker", "docker.io/dock__er/docker", "docker.io", "dock__er/docker", "", "", "dock__er/docker", "dock__er/docker"},
		{"test_com/foo", "docker.io/test_com/foo", "docker.io", "test_com/foo", "", "", "test_com/foo", "test_com/foo"},
		{"d/docker", "docker.io/d/docker", "docker.io", "d/docker", "", "", "d/docker", "d/docker"},
		{"jess/t", "docker.io/jess/t", "docker.io", "jess/t", "", "", "jess/t", "jess/t"},
		{"a/b/c/d/e", "docker.io/a/b/c/d/e", "docker.io", "a/b/c/d/e", "", "", "a/b/c/d/e", "a/b/c/d/e"},
		// 64 characters that are not all hex are a fine name.
		{"thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "docker.io", "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "", "", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev", "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"},
		// Short hex is a name too (ParseImageRef also offers it as an ID prefix).
		{"462dad", "docker.io/library/462dad", "docker.io", "library/462dad", "", "", "462dad", "462dad"},
		{"sha256:462dad", "docker.io/library/sha256:462dad", "docker.io", "library/sha256", "462dad", "", "sha256", "sha256:462dad"},
		// A 64-hex path is refused alone but accepted with a domain; its
		// familiar form is then the bare hex, which does not parse back.
		{"docker.io/" + hexA, "docker.io/library/" + hexA, "docker.io", "library/" + hexA, "", "", hexA, hexA},
		// Other registries keep their domain in every form.
		{"localhost/x", "localhost/x", "localhost", "x", "", "", "localhost/x", "localhost/x"},
		{"localhost:5000/x", "localhost:5000/x", "localhost:5000", "x", "", "", "localhost:5000/x", "localhost:5000/x"},
		{"localhost:5000/trace/tagged:2", "localhost:5000/trace/tagged:2", "localhost:5000", "trace/tagged", "2", "", "localhost:5000/trace/tagged", "localhost:5000/trace/tagged:2"},
		{"example.com/a/b:tag", "example.com/a/b:tag", "example.com", "a/b", "tag", "", "example.com/a/b", "example.com/a/b:tag"},
		{"example.com:8000/privatebase", "example.com:8000/privatebase", "example.com:8000", "privatebase", "", "", "example.com:8000/privatebase", "example.com:8000/privatebase"},
		{"127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", "", "", "127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker"},
		{"192.168.0.1:8/debian", "192.168.0.1:8/debian", "192.168.0.1:8", "debian", "", "", "192.168.0.1:8/debian", "192.168.0.1:8/debian"},
		{"xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", "", "", "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"},
		{"test-com:8080/foo", "test-com:8080/foo", "test-com:8080", "foo", "", "", "test-com:8080/foo", "test-com:8080/foo"},
		{"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "", "sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"},
		{"b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app", "test.example.com", "", "b.gcr.io/test.example.com/my-app", "b.gcr.io/test.example.com/my-app:test.example.com"},
		{"[fc00::1]:5000/docker", "[fc00::1]:5000/docker", "[fc00::1]:5000", "docker", "", "", "[fc00::1]:5000/docker", "[fc00::1]:5000/docker"},
		{"[2001:db8::1]/repo:tag", "[2001:db8::1]/repo:tag", "[2001:db8::1]", "repo", "tag", "", "[2001:db8::1]/repo", "[2001:db8::1]/repo:tag"},
		{"[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian", "", "", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian"},
		// An upper-case first component can only be a host.
		{"Foo/bar", "Foo/bar", "Foo", "bar", "", "", "Foo/bar", "Foo/bar"},
		{"DOCKER/docker", "DOCKER/docker", "DOCKER", "docker", "", "", "DOCKER/docker", "DOCKER/docker"},
		{"Docker.io/x", "Docker.io/x", "Docker.io", "x", "", "", "Docker.io/x", "Docker.io/x"},
		// A single component is never a host, whatever it looks like.
		{"localhost", "docker.io/library/localhost", "docker.io", "library/localhost", "", "", "localhost", "localhost"},
		{"localhost:5000", "docker.io/library/localhost:5000", "docker.io", "library/localhost", "5000", "", "localhost", "localhost:5000"},
		{"192.168.0.1", "docker.io/library/192.168.0.1", "docker.io", "library/192.168.0.1", "", "", "192.168.0.1", "192.168.0.1"},
		{"192.168.0.1:80", "docker.io/library/192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", "", "192.168.0.1", "192.168.0.1:80"},
		{"foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", "", "foo_bar.com", "foo_bar.com:8080"},
		// A first component with a '.' that is not a valid host: the whole
		// name becomes a domain-less path, as with distribution/reference.
		{"a__b.com/x", "a__b.com/x", "", "a__b.com/x", "", "", "a__b.com/x", "a__b.com/x"},
		// A port-looking first component makes the rest the path.
		{"busybox:1/2", "busybox:1/2", "busybox:1", "2", "", "", "busybox:1/2", "busybox:1/2"},
		// Digests, with and without a tag.
		{"busybox@" + digestA, "docker.io/library/busybox@" + digestA, "docker.io", "library/busybox", "", digestA, "busybox", "busybox@" + digestA},
		{"busybox:1@" + digestA, "docker.io/library/busybox:1@" + digestA, "docker.io", "library/busybox", "1", digestA, "busybox", "busybox:1@" + digestA},
		{"busybox:latest@" + digestB, "docker.io/library/busybox:latest@" + digestB, "docker.io", "library/busybox", "latest", digestB, "busybox", "busybox:latest@" + digestB},
		{"localhost:5000/x@" + digestA, "localhost:5000/x@" + digestA, "localhost:5000", "x", "", digestA, "localhost:5000/x", "localhost:5000/x@" + digestA},
		{"[2001:db8::1]:5000/repo:tag@" + digestA, "[2001:db8::1]:5000/repo:tag@" + digestA, "[2001:db8::1]:5000", "repo", "tag", digestA, "[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo:tag@" + digestA},
		// Length limits: a 128-character tag, a 255-character path.
		{"busybox:" + strings.Repeat("t", 128), "docker.io/library/busybox:" + strings.Repeat("t", 128), "docker.io", "library/busybox", strings.Repeat("t", 128), "", "busybox", "busybox:" + strings.Repeat("t", 128)},
		{strings.Repeat("a", 247), "docker.io/library/" + strings.Repeat("a", 247), "docker.io", "library/" + strings.Repeat("a", 247), "", "", strings.Repeat("a", 247), strings.Repeat("a", 247)},
		{strings.Repeat("a/", 127) + "a:tag-puts-this-over-max", "docker.io/" + strings.Repeat("a/", 127) + "a:tag-puts-this-over-max", "docker.io", strings.Repeat("a/", 127) + "a", "tag-puts-this-over-max", "", strings.Repeat("a/", 127) + "a", strings.Repeat("a/", 127) + "a:tag-puts-this-over-max"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseNormalizedNamed(tt.in)
			if err != nil {
				t.Fatalf("ParseNormalizedNamed(%q) error = %v, want nil", tt.in, err)
			}
			for _, c := range []struct{ what, got, want string }{
				{"String", n.String(), tt.str},
				{"Domain", n.Domain(), tt.domain},
				{"Path", n.Path(), tt.path},
				{"Tag", n.Tag(), tt.tag},
				{"Digest", n.Digest(), tt.digest},
				{"FamiliarName", n.FamiliarName(), tt.familiarName},
				{"FamiliarString", n.FamiliarString(), tt.familiar},
			} {
				if c.got != c.want {
					t.Errorf("ParseNormalizedNamed(%q).%s() = %q, want %q", tt.in, c.what, c.got, c.want)
				}
			}
			if want := strings.TrimSuffix(tt.domain+"/"+tt.path, "/"); tt.domain != "" && n.Name() != want {
				t.Errorf("ParseNormalizedNamed(%q).Name() = %q, want %q", tt.in, n.Name(), want)
			}
			again, err := ParseNormalizedNamed(n.String())
			if err != nil || again != n {
				t.Errorf("ParseNormalizedNamed(%q) = %#v, %v; want %#v", n.String(), again, err, n)
			}
		})
	}
}

func TestParseNormalizedNamedInvalid(t *testing.T) {
	tooLong := strings.Repeat("a/", 128) + "a:tag"
	tests := []struct {
		in   string
		want string
	}{
		{"", "invalid reference format"},
		{"Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{"BUSYBOX:latest", "invalid reference format: repository name (library/BUSYBOX) must be lowercase"},
		{"docker.io/library/Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{"docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"},
		{"docker.io/docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"},
		{"localhost:5000/Foo:tag", "invalid reference format: repository name (Foo) must be lowercase"},
		{"test:5000/Uppercase/lowercase:tag", "invalid reference format: repository name (Uppercase/lowercase) must be lowercase"},
		{"Foo/Bar", "invalid reference format: repository name (Bar) must be lowercase"},
		// Only the text before the first ':' is case-checked up front.
		{"busybox@SHA256:" + hexA, "invalid reference format: repository name (library/busybox@SHA256) must be lowercase"},
		// A host that is invalid only because of its case.
		{"Foo_Bar/x", "repository name must be lowercase"},
		{hexA, "invalid repository name (" + hexA + "), cannot specify 64-byte hexadecimal strings"},
		{hexB, "invalid repository name (" + hexB + "), cannot specify 64-byte hexadecimal strings"},
		{"https://github.com/docker/docker", "invalid reference format"},
		{"-docker", "invalid reference format"},
		{"-docker/docker", "invalid reference format"},
		{"docker-/docker", "invalid reference format"},
		{"-docker.io/docker/docker", "invalid reference format"},
		{"docker///docker", "invalid reference format"},
		{"docker.io/docker///docker", "invalid reference format"},
		{"docker/", "invalid reference format"},
		{"/docker", "invalid reference format"},
		{"____/____", "invalid reference format"},
		{"_docker/_docker", "invalid reference format"},
		{"dock..er/docker", "invalid reference format"},
		{"dock_.er/docker", "invalid reference format"},
		{"dock-.er/docker", "invalid reference format"},
		{"dock___er/docker", "invalid reference format"},
		{"aa/asdf$$^/aa", "invalid reference format"},
		{"busybox latest", "invalid reference format"},
		{"[fc00::1]", "invalid reference format"},
		{"[fc00::1]:5000", "invalid reference format"},
		{"[2001:db8::1]:tag", "invalid reference format"},
		{"fc00::1:5000/debian", "invalid reference format"},
		{"[fe80::1%eth0]:5000/debian", "invalid reference format"},
		{"[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid reference format"},
		{"[]:5000/debian", "invalid reference format"},
		{"example.com:/x", "invalid reference format"},
		{"example.com:50a/x", "invalid reference format"},
		{"busybox:", "invalid reference format"},
		{":justtag", "invalid reference format"},
		{"busybox:-tag", "invalid reference format"},
		{"busybox:.tag", "invalid reference format"},
		{"busybox:" + strings.Repeat("t", 129), "invalid reference format"},
		{"a:b:c", "invalid reference format"},
		{"@" + digestA, "invalid reference format"},
		{"busybox@", "invalid reference format"},
		{"busybox@sha256:abc", "invalid reference format"},
		{"busybox@" + hexA, "invalid reference format"},
		{"busybox@sha256:" + hexA + "@" + digestA, "invalid reference format"},
		{"busybox@1sha:" + hexA, "invalid reference format"},
		{"busybox@sha256:" + strings.Repeat("f", 34), "invalid checksum digest length"},
		{"busybox@sha256:" + strings.Repeat("f", 65), "invalid checksum digest length"},
		{"busybox@sha256:" + strings.ToUpper(hexA), "invalid checksum digest format"},
		{"validname@invaliddigest:" + hexA, "unsupported digest algorithm"},
		{"busybox@sha512:" + strings.Repeat("f", 128), "unsupported digest algorithm"},
		{tooLong, "repository name must not be more than 255 characters"},
		{strings.Repeat("a", 248), "repository name must not be more than 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseNormalizedNamed(tt.in)
			if err == nil {
				t.Fatalf("ParseNormalizedNamed(%q) = %v, want error %q", tt.in, n, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseNormalizedNamed(%q) error = %q, want %q", tt.in, err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ParseNormalizedNamed(%q) error kind = %v, want invalid parameter", tt.in, errdefs.KindOf(err))
			}
			if !n.IsZero() {
				t.Errorf("ParseNormalizedNamed(%q) = %#v with an error, want the zero Named", tt.in, n)
			}
		})
	}
}

func TestTagNameOnlyAndIsNameOnly(t *testing.T) {
	tests := []struct {
		in       string
		nameOnly bool
		want     string // TagNameOnly(...).String()
		docker   string // DockerRef(...).String()
	}{
		{"busybox", true, "docker.io/library/busybox:latest", "docker.io/library/busybox:latest"},
		{"busybox:1", false, "docker.io/library/busybox:1", "docker.io/library/busybox:1"},
		{"busybox@" + digestA, false, "docker.io/library/busybox@" + digestA, "docker.io/library/busybox@" + digestA},
		{"gcr.io/library/busybox:latest@" + digestA, false, "gcr.io/library/busybox:latest@" + digestA, "gcr.io/library/busybox@" + digestA},
		{"gcr.io/library/busybox", true, "gcr.io/library/busybox:latest", "gcr.io/library/busybox:latest"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n := mustParse(t, tt.in)
			if got := IsNameOnly(n); got != tt.nameOnly {
				t.Errorf("IsNameOnly(%v) = %v, want %v", n, got, tt.nameOnly)
			}
			if got := TagNameOnly(n).String(); got != tt.want {
				t.Errorf("TagNameOnly(%v) = %q, want %q", n, got, tt.want)
			}
			if got := DockerRef(n).String(); got != tt.docker {
				t.Errorf("DockerRef(%v) = %q, want %q", n, got, tt.docker)
			}
			got, err := ParseDockerRef(tt.in)
			if err != nil || got.String() != tt.docker {
				t.Errorf("ParseDockerRef(%q) = %v, %v; want %q", tt.in, got, err, tt.docker)
			}
			if got := TrimNamed(n).String(); got != n.Name() {
				t.Errorf("TrimNamed(%v) = %q, want %q", n, got, n.Name())
			}
		})
	}
}

func TestWithTag(t *testing.T) {
	tests := []struct {
		in, tag string
		want    string // String(), or "" for an error
	}{
		{"busybox", "1", "docker.io/library/busybox:1"},
		{"busybox:old", "new", "docker.io/library/busybox:new"},
		{"test.com:8000/foo", "TAG5", "test.com:8000/foo:TAG5"},
		{"test.com:8000/foo@" + digestA, "TAG5", "test.com:8000/foo:TAG5@" + digestA},
		{"busybox", "", ""},
		{"busybox", "-foo", ""},
		{"busybox", "a/b", ""},
		{"busybox", strings.Repeat("x", 129), ""},
	}
	for _, tt := range tests {
		t.Run(tt.in+"+"+tt.tag, func(t *testing.T) {
			got, err := WithTag(mustParse(t, tt.in), tt.tag)
			if tt.want == "" {
				if err == nil || err.Error() != "invalid tag format" || !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("WithTag(%q, %q) = %v, %v; want invalid tag format", tt.in, tt.tag, got, err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("WithTag(%q, %q) = %v, %v; want %q", tt.in, tt.tag, got, err, tt.want)
			}
		})
	}
}

func TestWithDigest(t *testing.T) {
	tests := []struct {
		in      string
		dgst    Digest
		want    string
		wantErr string
	}{
		{"busybox", digestA, "docker.io/library/busybox@" + digestA, ""},
		{"busybox:1", digestA, "docker.io/library/busybox:1@" + digestA, ""},
		{"busybox@" + digestB, digestA, "docker.io/library/busybox@" + digestA, ""},
		{"busybox", "foo", "", "invalid checksum digest format"},
		{"busybox", "sha256:1234567890098765432112345667890098765", "", "invalid checksum digest length"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"+"+string(tt.dgst), func(t *testing.T) {
			got, err := WithDigest(mustParse(t, tt.in), tt.dgst)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("WithDigest(%q, %q) = %v, %v; want error %q", tt.in, tt.dgst, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("WithDigest(%q, %q) = %v, %v; want %q", tt.in, tt.dgst, got, err, tt.want)
			}
		})
	}
}

func TestParseNamed(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"docker.io/library/busybox", ""},
		{"docker.io/library/busybox:1@" + digestA, ""},
		{"localhost:5000/x", ""},
		{"busybox", "repository name must be canonical"},
		{"docker.io/busybox", "repository name must be canonical"},
		{"index.docker.io/library/busybox", "repository name must be canonical"},
		{"Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseNamed(tt.in)
			if tt.wantErr == "" {
				if err != nil || n.String() != tt.in {
					t.Errorf("ParseNamed(%q) = %v, %v; want %q", tt.in, n, err, tt.in)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("ParseNamed(%q) = %v, %v; want error %q", tt.in, n, err, tt.wantErr)
			}
		})
	}
}

func TestParseRepoTag(t *testing.T) {
	tests := []struct {
		repo, tag string
		want      string // String(); "" with wantErr "" means the zero Named
		wantErr   string
	}{
		{"", "", "", ""},
		{"", "1", "", ""},
		{"docker.io/library/trace-tagged", "1", "docker.io/library/trace-tagged:1", ""},
		{"localhost:5000/trace/tagged", "2", "localhost:5000/trace/tagged:2", ""},
		{"busybox", "", "docker.io/library/busybox:latest", ""},
		{"busybox:7", "", "docker.io/library/busybox:7", ""},
		{"busybox:7", "8", "docker.io/library/busybox:8", ""},
		{"busybox@" + digestA, "", "", "cannot import digest reference"},
		{"busybox", "-bad", "", "invalid tag format"},
		{"Busybox", "1", "", "invalid reference format: repository name (library/Busybox) must be lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.repo+"+"+tt.tag, func(t *testing.T) {
			n, err := ParseRepoTag(tt.repo, tt.tag)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, errdefs.ErrInvalidParameter) {
					t.Errorf("ParseRepoTag(%q, %q) = %v, %v; want error %q", tt.repo, tt.tag, n, err, tt.wantErr)
				}
				return
			}
			if err != nil || n.String() != tt.want {
				t.Errorf("ParseRepoTag(%q, %q) = %v, %v; want %q", tt.repo, tt.tag, n, err, tt.want)
			}
		})
	}
}

func TestFamiliarMatch(t *testing.T) {
	tests := []struct {
		ref, pattern string
		want         bool
	}{
		{"foo", "foo/**/ba[rz]", false},
		{"foo/any/bat", "foo/*/ba[rz]", false},
		{"foo/a/bar", "foo/*/ba[rz]", true},
		{"foo/c/baz:tag", "foo/*/baz:tag", true},
		{"foo/c/baz:tag", "foo/c/baz", true},
		{"example.com/foo/c/baz:tag", "*/foo/c/baz", true},
		{"example.com/foo/c/baz:tag", "example.com/foo/c/baz", true},
		{"busybox:latest", "busybox", true},
		{"busybox:latest", "busy*", true},
		{"busybox:latest", "busybox:lat*", true},
		{"busybox:latest", "docker.io/library/busybox", false},
		{"me/box:1", "me/*", true},
	}
	for _, tt := range tests {
		t.Run(tt.ref+"~"+tt.pattern, func(t *testing.T) {
			got, err := FamiliarMatch(tt.pattern, mustParse(t, tt.ref))
			if err != nil || got != tt.want {
				t.Errorf("FamiliarMatch(%q, %q) = %v, %v; want %v", tt.pattern, tt.ref, got, err, tt.want)
			}
		})
	}
	if _, err := FamiliarMatch("[-x]", mustParse(t, "foo")); err == nil {
		t.Errorf("FamiliarMatch(%q, foo) error = nil, want a bad-pattern error", "[-x]")
	}
}

func TestNamedJSON(t *testing.T) {
	type record struct {
		Ref  Named
		Refs map[Named]string
	}
	in := record{
		Ref:  mustParse(t, "me/box:1@"+digestA),
		Refs: map[Named]string{mustParse(t, "busybox:latest"): digestB},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("json.Marshal(%v) error = %v", in, err)
	}
	want := `{"Ref":"docker.io/me/box:1@` + digestA + `","Refs":{"docker.io/library/busybox:latest":"` + digestB + `"}}`
	if string(b) != want {
		t.Errorf("json.Marshal = %s, want %s", b, want)
	}
	var out record
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s) error = %v", b, err)
	}
	if out.Ref != in.Ref || len(out.Refs) != 1 || out.Refs[mustParse(t, "busybox:latest")] != digestB {
		t.Errorf("json round trip = %#v, want %#v", out, in)
	}

	var zero record
	if err := json.Unmarshal([]byte(`{"Ref":""}`), &zero); err != nil || !zero.Ref.IsZero() {
		t.Errorf(`json.Unmarshal({"Ref":""}) = %#v, %v; want the zero Named`, zero.Ref, err)
	}
	if err := json.Unmarshal([]byte(`{"Ref":"Busybox"}`), &zero); err == nil {
		t.Errorf(`json.Unmarshal({"Ref":"Busybox"}) error = nil, want an error`)
	}
}

func TestZeroNamed(t *testing.T) {
	var n Named
	if !n.IsZero() || n.String() != "" || n.FamiliarString() != "" || n.Name() != "" {
		t.Errorf("zero Named = %q / %q / %q, want all empty", n.String(), n.FamiliarString(), n.Name())
	}
	if mustParse(t, "busybox").IsZero() {
		t.Errorf("ParseNormalizedNamed(busybox).IsZero() = true, want false")
	}
}

func mustParse(t *testing.T, s string) Named {
	t.Helper()
	n, err := ParseNormalizedNamed(s)
	if err != nil {
		t.Fatalf("ParseNormalizedNamed(%q) error = %v", s, err)
	}
	return n
}
