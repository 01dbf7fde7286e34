package binwire

import (
	"math"
	"slices"
	"testing"
)

// TestRoundTrip: integers at their limits, strings, bytes, nil and empty
// slices and maps come back as they went; a read past the end, a length
// beyond it, a bool that is neither 0 nor 1 and bytes left over are
// errors.
func TestRoundTrip(t *testing.T) {
	var e Encoder
	ints := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 300, -300}
	for _, v := range ints {
		e.Int(v)
	}
	e.Uint(math.MaxUint64)
	e.String("")
	e.String("é\x00/")
	e.Bytes([]byte{1, 2, 3})
	e.Strings(nil)
	e.Strings([]string{})
	e.Strings([]string{"a", ""})
	e.StringMap(nil)
	e.StringMap(map[string]string{"b": "2", "a": "1"})
	e.Bool(true)

	d := NewDecoder(e.B)
	for _, want := range ints {
		if got := d.Int(); got != want {
			t.Errorf("Int = %d, want %d", got, want)
		}
	}
	if got := d.Uint(); got != math.MaxUint64 {
		t.Errorf("Uint = %d", got)
	}
	if d.String() != "" || d.String() != "é\x00/" || !slices.Equal(d.Bytes(), []byte{1, 2, 3}) {
		t.Error("strings or bytes differ")
	}
	if v := d.Strings(); v != nil {
		t.Errorf("nil slice came back as %#v", v)
	}
	if v := d.Strings(); v == nil || len(v) != 0 {
		t.Errorf("empty slice came back as %#v", v)
	}
	if v := d.Strings(); !slices.Equal(v, []string{"a", ""}) {
		t.Errorf("slice came back as %q", v)
	}
	if m := d.StringMap(); m != nil {
		t.Errorf("nil map came back as %#v", m)
	}
	if m := d.StringMap(); len(m) != 2 || m["a"] != "1" || m["b"] != "2" {
		t.Errorf("map came back as %#v", m)
	}
	if !d.Bool() || d.Err() != nil {
		t.Errorf("end: %v", d.Err())
	}

	for _, bad := range [][]byte{
		{},          // a read past the end
		{5, 'a'},    // a length beyond the end
		{2},         // a bool of 2
		{1, 'a', 0}, // a byte left over
	} {
		d := NewDecoder(bad)
		if len(bad) == 1 {
			d.Bool()
		} else {
			_ = d.String()
		}
		if d.Err() == nil {
			t.Errorf("%v decoded without an error", bad)
		}
	}
}
