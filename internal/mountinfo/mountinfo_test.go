package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/mnt", "/mnt"},
		{`/a\040b`, "/a b"},
		{`/a\134b`, `/a\b`},
		{`/t\011ab\134`, "/t\tab\\"},
		{`/nl\012x`, "/nl\nx"},
		{`/end\040`, "/end "},
		{`/short\04`, `/short\04`},
		{`/bad\999`, `/bad\999`},
		{`\`, `\`},
	} {
		if got := Unescape(tc.in); got != tc.want {
			t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`/a\040b`, `\`, `\1`, `/x\777`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := Unescape(s); len(got) > len(s) {
			t.Fatalf("Unescape(%q) = %q, longer than its input", s, got)
		}
	})
}
