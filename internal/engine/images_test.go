package engine

import (
	"strings"
	"testing"

	"skiffd/internal/reference"
)

func TestSingleReference(t *testing.T) {
	dg := "@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		refs []string
		want bool
	}{
		{nil, false},
		{[]string{"a:1"}, true},
		{[]string{"a" + dg}, true},
		{[]string{"a:1", "a" + dg}, true},
		{[]string{"a:1", "a:2"}, false},
		{[]string{"a:1", "b" + dg}, false},
		{[]string{"a" + dg, "b" + dg}, false},
	} {
		var refs []reference.Named
		for _, s := range tc.refs {
			n, err := reference.ParseNormalizedNamed(s)
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, reference.DockerRef(n))
		}
		if got := singleReference(refs); got != tc.want {
			t.Errorf("singleReference(%q) = %v, want %v", tc.refs, got, tc.want)
		}
	}
	id := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for name, want := range map[string]bool{"0123": true, "sha256:0123": true, id: true, "busybox": false, "123": false} {
		if got := isImageIDPrefix(id, name); got != want {
			t.Errorf("isImageIDPrefix(%q) = %v, want %v", name, got, want)
		}
	}
}
