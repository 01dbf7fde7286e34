// Package binwire is a small binary encoding for messages between two
// processes of the same skiffd binary (the shim and the container's init
// or exec helper): values appended in a fixed order, lengths and integers
// as varints. It exists because those processes are fresh on every
// container start and exec, and encoding/json's first use in a process
// (building its per-type decoders by reflection) cost init some 0.3 ms of
// every start (issue 13). Both ends are always the same build, so the
// format needs no versioning; a decoder still refuses malformed input
// instead of panicking.
package binwire

import (
	"encoding/binary"
	"errors"
	"slices"
)

// ErrMalformed is returned for input that ends early, holds a length
// beyond its end, or has bytes left over.
var ErrMalformed = errors.New("binwire: malformed message")

// Encoder appends values to a buffer.
type Encoder struct{ B []byte }

func (e *Encoder) Uint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) Int(v int64)   { e.B = binary.AppendVarint(e.B, v) }

func (e *Encoder) Bool(v bool) {
	if v {
		e.B = append(e.B, 1)
	} else {
		e.B = append(e.B, 0)
	}
}

func (e *Encoder) Bytes(v []byte) {
	e.Uint(uint64(len(v)))
	e.B = append(e.B, v...)
}

func (e *Encoder) String(v string) {
	e.Uint(uint64(len(v)))
	e.B = append(e.B, v...)
}

// Strings encodes a slice of strings (see AppendSlice).
func (e *Encoder) Strings(v []string) { AppendSlice(e, v, e.String) }

// AppendSlice encodes a slice, each element with one; a presence byte
// keeps nil apart from empty.
func AppendSlice[T any](e *Encoder, v []T, one func(T)) {
	e.Bool(v != nil)
	if v == nil {
		return
	}
	e.Uint(uint64(len(v)))
	for _, x := range v {
		one(x)
	}
}

// DecodeSlice reads what AppendSlice wrote, each element with one.
func DecodeSlice[T any](d *Decoder, one func() T) []T {
	if !d.Bool() {
		return nil
	}
	n := d.Len()
	v := make([]T, 0, n)
	for range n {
		v = append(v, one())
	}
	return v
}

// StringMap encodes a map in key order (one map, one encoding); nil stays
// nil.
func (e *Encoder) StringMap(m map[string]string) {
	e.Bool(m != nil)
	if m == nil {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.Uint(uint64(len(keys)))
	for _, k := range keys {
		e.String(k)
		e.String(m[k])
	}
}

// Decoder reads values in the order they were appended. The first error
// sticks: later reads return zero values, and Err reports it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first error, or ErrMalformed if bytes are left over.
func (d *Decoder) Err() error {
	if d.err == nil && len(d.b) > 0 {
		return ErrMalformed
	}
	return d.err
}

// Fail marks the input malformed, for a value a caller finds wrong.
func (d *Decoder) Fail() { d.err, d.b = ErrMalformed, nil }

func (d *Decoder) Uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.Fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Int reads what Encoder.Int wrote: a zigzag-encoded Uint.
func (d *Decoder) Int() int64 {
	u := d.Uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *Decoder) Bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.Fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// Len reads a count of elements, each at least one byte long, that the
// rest of the input can hold.
func (d *Decoder) Len() int {
	n := d.Uint()
	if n > uint64(len(d.b)) {
		d.Fail()
		return 0
	}
	return int(n)
}

func (d *Decoder) raw() []byte {
	n := d.Len()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// Bytes returns a slice of the input (nil for an empty value).
func (d *Decoder) Bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return v
}

func (d *Decoder) String() string { return string(d.raw()) }

func (d *Decoder) Strings() []string { return DecodeSlice(d, d.String) }

func (d *Decoder) StringMap() map[string]string {
	if !d.Bool() {
		return nil
	}
	n := d.Len()
	m := make(map[string]string, n)
	for range n {
		k := d.String()
		m[k] = d.String()
	}
	return m
}
