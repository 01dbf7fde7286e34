package shim

import (
	"bytes"
	"io"
	"testing"
)

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	WriteFrame(&buf, StreamStdout, []byte("hello"))
	WriteFrame(&buf, StreamStderr, nil)
	WriteFrame(&buf, StreamStderr, []byte("oops\n"))
	if got := buf.Bytes()[:8]; !bytes.Equal(got, []byte{1, 0, 0, 0, 0, 0, 0, 5}) {
		t.Fatalf("header = %v, want stdcopy's", got)
	}
	var got []string
	for {
		s, p, err := ReadFrame(&buf, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rune('0'+s))+":"+string(p))
	}
	if want := "1:hello|2:|2:oops\n"; join(got) != want {
		t.Errorf("frames = %q, want %q", join(got), want)
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(x)
	}
	return b.String()
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader (a shim's
// output as the daemon sees it): no panics, no huge allocations, and
// frames written back read the same.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			s, p, err := ReadFrame(r, nil)
			if err != nil {
				return
			}
			var w bytes.Buffer
			WriteFrame(&w, s, p)
			s2, p2, err := ReadFrame(&w, nil)
			if err != nil || s2 != s || !bytes.Equal(p, p2) {
				t.Fatalf("round trip of frame %d/%q failed", s, p)
			}
		}
	})
}

func TestDecodeState(t *testing.T) {
	st, err := decodeState([]byte(`{"version":1,"id":"c","shimPid":5,"status":"stopped","exitCode":137,"oomKilled":true}`))
	if err != nil || st.ExitCode != 137 || !st.OOMKilled || st.Status != StatusStopped {
		t.Errorf("decodeState = %+v, %v", st, err)
	}
	if _, err := decodeState([]byte(`{`)); err == nil {
		t.Error("decodeState accepted a truncated file")
	}
}
