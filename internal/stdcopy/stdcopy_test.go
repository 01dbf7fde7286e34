package stdcopy

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestWriterFramesLikeTheTrace(t *testing.T) {
	var buf bytes.Buffer
	out, errw := NewWriters(&buf)
	out.Write([]byte("hi\n"))
	errw.Write([]byte("to-stderr\n"))
	out.Write(nil)
	want := "\x01\x00\x00\x00\x00\x00\x00\x03hi\n" + "\x02\x00\x00\x00\x00\x00\x00\x0ato-stderr\n"
	if buf.String() != want {
		t.Errorf("frames = %q, want %q", buf.String(), want)
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	out, errw := NewWriters(&buf)
	big := strings.Repeat("x", 100000)
	out.Write([]byte("a"))
	errw.Write([]byte("b"))
	out.Write([]byte(big))
	var o, e bytes.Buffer
	n, err := Copy(&o, &e, &buf)
	if err != nil || o.String() != "a"+big || e.String() != "b" || n != int64(2+len(big)) {
		t.Errorf("Copy = %d, %v; stdout %d bytes, stderr %q", n, err, o.Len(), e.String())
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
	}{
		{"truncated header", "\x01\x00\x00", "truncated frame header"},
		{"truncated payload", "\x01\x00\x00\x00\x00\x00\x00\x05ab", "truncated frame"},
		{"unknown stream", "\x07\x00\x00\x00\x00\x00\x00\x01a", "unknown stream id 7"},
		{"huge", "\x01\x00\x00\x00\xff\xff\xff\xff", "too large"},
	}
	for _, tt := range tests {
		_, err := Copy(nil, nil, strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Copy error = %v, want %q", tt.name, err, tt.want)
		}
	}
	_, err := Copy(nil, nil, strings.NewReader("\x03\x00\x00\x00\x00\x00\x00\x04boom"))
	var se *ErrSystem
	if !errors.As(err, &se) || se.Message != "boom" {
		t.Errorf("systemerr frame: %v", err)
	}
}

func TestConcurrentWritersDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	out, errw := NewWriters(&buf)
	var wg sync.WaitGroup
	for i := range 8 {
		w := out
		if i%2 == 1 {
			w = errw
		}
		wg.Go(func() {
			for range 200 {
				w.Write([]byte("0123456789"))
			}
		})
	}
	wg.Wait()
	var o, e bytes.Buffer
	if _, err := Copy(&o, &e, &buf); err != nil {
		t.Fatal(err)
	}
	if o.Len() != 4*200*10 || e.Len() != 4*200*10 {
		t.Errorf("stdout %d, stderr %d bytes; want %d each", o.Len(), e.Len(), 8000)
	}
}

func FuzzCopy(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x00\x00\x00\x00\x03hi\n"))
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var o, e bytes.Buffer
		n, _ := Copy(&o, &e, bytes.NewReader(in))
		if n != int64(o.Len()+e.Len()) || n > int64(len(in)) {
			t.Fatalf("Copy reported %d bytes, wrote %d+%d from %d input bytes", n, o.Len(), e.Len(), len(in))
		}
	})
}
