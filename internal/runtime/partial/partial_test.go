package partial

import "testing"

// TestNext: the pieces of a cut line share an ID and count from 1, the
// piece with the newline is the last; whole lines have none; the streams
// are followed apart.
func TestNext(t *testing.T) {
	var tr Tracker
	if m := tr.Next("stdout", nil); m != (Meta{}) {
		t.Errorf("an empty entry: %+v", m)
	}
	if m := tr.Next("stdout", []byte("whole\n")); m != (Meta{}) {
		t.Errorf("a whole line: %+v", m)
	}
	a := tr.Next("stdout", []byte("piece one"))
	e := tr.Next("stderr", []byte("err whole\n"))
	b := tr.Next("stdout", []byte("piece two"))
	c := tr.Next("stdout", []byte("end\n"))
	if len(a.ID) != 64 || a.Ordinal != 1 || a.Last || b.ID != a.ID || b.Ordinal != 2 || b.Last || c.ID != a.ID || c.Ordinal != 3 || !c.Last {
		t.Errorf("pieces %+v %+v %+v", a, b, c)
	}
	if e != (Meta{}) {
		t.Errorf("stderr's whole line in the middle of stdout's pieces: %+v", e)
	}
	d := tr.Next("stdout", []byte("next piece"))
	if d.ID == a.ID || d.Ordinal != 1 || d.Last {
		t.Errorf("a new line's piece: %+v (the last line's ID %s)", d, a.ID)
	}
	if m := tr.Next("stdout", []byte("x")); m.ID != d.ID || m.Ordinal != 2 {
		t.Errorf("the next piece: %+v", m)
	}
}
