package spec

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"skiffd/internal/binwire"
)

// fill sets every field reachable from v to a random value that is not
// the zero value: a field the binary form forgets comes back zero and the
// round trip differs.
func fill(v reflect.Value, r *rand.Rand, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(string(rune('a'+r.IntN(26))) + "\x00é/" + string(rune('a'+r.IntN(26))))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := r.Int64N(1<<20) + 1
		if r.IntN(2) == 0 {
			n = -n
		}
		if v.OverflowInt(n) {
			n = 1
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := r.Uint64N(1<<20) + 1
		if v.OverflowUint(n) {
			n = 1
		}
		v.SetUint(n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), r, depth)
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), r, depth)
		v.Set(p)
	case reflect.Slice:
		n := 1 + r.IntN(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(s.Index(i), r, depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 1 + r.IntN(3) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, r, depth+1)
			fill(e, r, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func roundTrip(t *testing.T, s *Spec) {
	t.Helper()
	var e binwire.Encoder
	s.AppendBinary(&e)
	var got Spec
	d := binwire.NewDecoder(e.B)
	got.DecodeBinary(d)
	if err := d.Err(); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(&got, s) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, *s)
	}
}

// TestBinaryRoundTrip: a spec with every field set, one with every field
// zero, and one with every slice and map empty but not nil come back
// equal, field for field.
func TestBinaryRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var s Spec
		fill(reflect.ValueOf(&s).Elem(), r, 0)
		roundTrip(t, &s)
	}
	roundTrip(t, &Spec{})
	empty := &Spec{
		Process: Process{Args: []string{}, Env: []string{}, AdditionalGroups: []string{}, Capabilities: []string{},
			Rlimits: []Rlimit{}},
		Mounts: []Mount{{Options: []string{}}}, MaskedPaths: []string{}, ReadonlyPaths: []string{},
		Devices: []Device{}, Namespaces: []Namespace{}, Sysctl: map[string]string{},
		Cgroup:      &Cgroup{Resources: Resources{Devices: []DeviceRule{}}},
		Seccomp:     &Seccomp{Filter: []SockFilter{}},
		Log:         Log{Attrs: map[string]string{}},
		Annotations: map[string]string{},
	}
	roundTrip(t, empty)
	roundTrip(t, &Spec{Seccomp: &Seccomp{}})
	roundTrip(t, Default("c", "/root"))
}

// FuzzDecodeBinary: no input makes the decoder panic, and what decodes
// encodes to a form that decodes to the same spec.
func FuzzDecodeBinary(f *testing.F) {
	var e binwire.Encoder
	Default("c", "/root").AppendBinary(&e)
	f.Add(e.B)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Spec
		d := binwire.NewDecoder(b)
		s.DecodeBinary(d)
		if d.Err() != nil {
			return
		}
		var e binwire.Encoder
		s.AppendBinary(&e)
		var again Spec
		d = binwire.NewDecoder(e.B)
		again.DecodeBinary(d)
		if err := d.Err(); err != nil || !reflect.DeepEqual(&again, &s) {
			t.Errorf("re-encoded spec does not decode the same: %v", err)
		}
	})
}
