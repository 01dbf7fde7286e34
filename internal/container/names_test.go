package container

import (
	"regexp"
	"strings"
	"testing"
)

// dockerdName is dockerd's container name pattern, which validName
// writes out.
var dockerdName = regexp.MustCompile(`^/?` + validNameChars + `+$`)

// FuzzValidNameMatchesDockerd: validName accepts exactly the names
// dockerd's pattern does (after ValidateName's one slash is trimmed).
func FuzzValidNameMatchesDockerd(f *testing.F) {
	for _, s := range []string{"", "a", "ab", "/ab", "//ab", "///ab", "a/b", "_a", "a_", "a.b-c_d", "0", "09", "ä", "aé", "a\n", "-a", ".a", "a b", "a$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		name = strings.TrimPrefix(name, "/")
		if got, want := validName(name), dockerdName.MatchString(name); got != want {
			t.Errorf("validName(%q) = %v, dockerd's pattern says %v", name, got, want)
		}
	})
}
