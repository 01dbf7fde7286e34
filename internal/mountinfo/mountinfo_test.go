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

func TestContaining(t *testing.T) {
	table := Parse(`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /tmp rw shared:5 - tmpfs tmpfs rw
31 30 0:41 / /tmp/a rw - tmpfs tmpfs rw
32 30 0:42 / /tmp/a\040b rw master:5 - tmpfs tmpfs rw
33 31 0:43 / /tmp/a rw shared:9 master:5 - tmpfs tmpfs rw
`)
	for _, tc := range []struct {
		path          string
		point         string
		shared, slave bool
	}{
		{"/", "/", true, false},
		{"/etc", "/", true, false},
		{"/tmp/ab", "/tmp", true, false},
		{"/tmp/a/x", "/tmp/a", true, true},
		{"/tmp/a b/c", "/tmp/a b", false, true},
	} {
		m, ok := Containing(table, tc.path)
		if !ok || m.Point != tc.point || m.Shared() != tc.shared || m.Slave() != tc.slave {
			t.Errorf("Containing(%q) = %+v, %v; want point %q shared %v slave %v", tc.path, m, ok, tc.point, tc.shared, tc.slave)
		}
	}
}
