package jsonlog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"skiffd/internal/sys"
)

var ts = time.Date(2026, 11, 26, 8, 58, 20, 531376562, time.UTC)

func TestAppendEntry(t *testing.T) {
	for _, tc := range []struct {
		line, stream, want string
	}{
		{"hello from c1 pid=1\n", "stdout", `{"log":"hello from c1 pid=1\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}` + "\n"},
		{"CapInh:\t0000000000000000\n", "stdout", `{"log":"CapInh:\u00090000000000000000\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}` + "\n"},
		{"<a href=\"x\">&</a>\r\n", "stderr", `{"log":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\r\n","stream":"stderr","time":"2026-11-26T08:58:20.531376562Z"}` + "\n"},
		{"bad \xff utf8 \u2028 \\", "stdout", `{"log":"bad \ufffd utf8 \u2028 \\","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}` + "\n"},
		{"héllo\x7f\x00", "stdout", "{\"log\":\"héllo\x7f\\u0000\",\"stream\":\"stdout\",\"time\":\"2026-11-26T08:58:20.531376562Z\"}\n"},
	} {
		var buf bytes.Buffer
		AppendEntry(&buf, tc.stream, []byte(tc.line), ts)
		if buf.String() != tc.want {
			t.Errorf("AppendEntry(%q) = %s, want %s", tc.line, buf.String(), tc.want)
		}
	}
}

func readEntries(t *testing.T, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestStreamSplitting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream("stdout")
	long := strings.Repeat("x", MaxLine+10) + "\n"
	for _, chunk := range []string{"a", "b\nc", "\n", long, "tail"} {
		s.Write([]byte(chunk))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got []string
	for _, e := range readEntries(t, path) {
		got = append(got, e["log"])
	}
	want := []string{"ab\n", "c\n", strings.Repeat("x", MaxLine), strings.Repeat("x", 10) + "\n", "tail"}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %.40q (len %d), want %.40q (len %d)", i, got[i], len(got[i]), want[i], len(want[i]))
		}
	}
}

func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		maxFiles int
		compress bool
		files    []string
	}{
		{1, false, []string{"l"}},
		{3, false, []string{"l", "l.1", "l.2"}},
		// With compression log.1 stays as it is until the next rotation.
		{3, true, []string{"l", "l.1", "l.2.gz"}},
		{4, true, []string{"l", "l.1", "l.2.gz", "l.3.gz"}},
		{2, true, []string{"l", "l.1"}},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "l")
		w, err := OpenWith(path, Options{MaxSize: 100, MaxFiles: tc.maxFiles, Compress: tc.compress})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := w.WriteEntry("stdout", []byte("0123456789\n"), ts); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if strings.Join(names, ",") != strings.Join(tc.files, ",") {
			t.Errorf("maxFiles %d: files %v, want %v", tc.maxFiles, names, tc.files)
		}
		if st, _ := os.Stat(path); st.Size() > 200 {
			t.Errorf("maxFiles %d: live file is %d bytes, want at most about max-size", tc.maxFiles, st.Size())
		}
		if tc.compress && tc.maxFiles > 2 {
			f, err := os.Open(path + ".2.gz")
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			f.Close()
			if err != nil || !strings.Contains(string(b), `"log":"0123456789\n"`) {
				t.Errorf("l.2.gz holds %q, %v; want log lines", b, err)
			}
			if _, _, ok := ParseGzipIdentity(zr.Comment); !ok {
				t.Errorf("l.2.gz header comment %q, want the file's identity", zr.Comment)
			}
		}
	}
}

// FuzzAppendEntry checks that every entry is one valid JSON line that
// decodes back to the input (with invalid UTF-8 replaced).
func FuzzAppendEntry(f *testing.F) {
	for _, s := range []string{"", "hello\n", "\t<>&\"\\", "\xff\xfe", "\u2028\u2029", "a\x00b\x1f\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var buf bytes.Buffer
		AppendEntry(&buf, "stdout", line, ts)
		out := buf.Bytes()
		if bytes.IndexByte(out[:len(out)-1], '\n') >= 0 || out[len(out)-1] != '\n' {
			t.Fatalf("entry is not one line: %q", out)
		}
		var m struct {
			Log    string `json:"log"`
			Stream string `json:"stream"`
			Time   time.Time
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		// Invalid UTF-8 is replaced, so only valid input must round-trip.
		if utf8.Valid(line) && m.Log != string(line) {
			t.Fatalf("round trip %q = %q", line, m.Log)
		}
		if !m.Time.Equal(ts) || m.Stream != "stdout" {
			t.Fatalf("time/stream = %v %q", m.Time, m.Stream)
		}
	})
}

func TestAttrs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := OpenWith(path, Options{Attrs: map[string]string{"tag": "web<1>", "com.example": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteEntry("stdout", []byte("hi\n"), ts); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, _ := os.ReadFile(path)
	want := `{"log":"hi\n","stream":"stdout","attrs":{"com.example":"x","tag":"web\u003c1\u003e"},"time":"2026-11-26T08:58:20.531376562Z"}` + "\n"
	if string(b) != want {
		t.Errorf("entry = %s, want %s", b, want)
	}
}

// FuzzAppendStringExact checks the escaping byte for byte against
// encoding/json's, which escapes the same bytes the same way (HTML
// characters, U+2028/U+2029, invalid UTF-8 as \ufffd) except that moby's
// json-file writer gives only \n and \r (besides \\ and \") a short form:
// a tab, backspace or form feed is \u00XX.
func FuzzAppendStringExact(f *testing.F) {
	for _, s := range []string{"", "hello\n", "\t<>&\"\\\b\f", "\\t\\n", "\xff\xfe", "\xe2\x80", "\u2028\u2029", "a\x00b\x1f\x7f", "héllo wörld €𝄞"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		want, err := json.Marshal(string(s))
		if err != nil {
			t.Fatal(err)
		}
		var ref []byte
		for i := 0; i < len(want); i++ {
			if want[i] != '\\' {
				ref = append(ref, want[i])
				continue
			}
			i++
			switch want[i] {
			case 't':
				ref = append(ref, `\u0009`...)
			case 'b':
				ref = append(ref, `\u0008`...)
			case 'f':
				ref = append(ref, `\u000c`...)
			default:
				ref = append(ref, '\\', want[i])
			}
		}
		if got := appendString([]byte("x"), s); string(got) != "x"+string(ref) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got[1:], ref)
		}
	})
}

// TestStreamWriteBatches checks that the entries of one chunk of output go
// to the file together: one write, not one per line (issue 13: a write per
// line held the writer to ~30 MB/s). It counts this process's write calls
// in /proc/self/io.
func TestStreamWriteBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := w.Stream("stdout")
	chunk := []byte(strings.Repeat("the quick brown fox jumps over the lazy d\n", 1000))
	before := writeCalls(t)
	if _, err := s.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if n := writeCalls(t) - before; n > 10 {
		t.Errorf("logging 1000 lines took %d write calls, want a few", n)
	}
	if got := len(readEntries(t, path)); got != 1000 {
		t.Errorf("logged %d entries, want 1000", got)
	}
}

// writeCalls returns syscw from /proc/self/io.
func writeCalls(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}

// TestRotationWithinChunk checks that a chunk of many lines, written as one
// batch, still rotates at max-size entry by entry: every rotated file ends
// with the first entry that took it to max-size, and no entry is lost.
func TestRotationWithinChunk(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "l")
	const maxSize = 1000
	w, err := OpenWith(path, Options{MaxSize: maxSize, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for i := range 200 {
		chunk = fmt.Appendf(chunk, "line %03d\n", i)
	}
	s := w.Stream("stdout")
	if _, err := s.Write(chunk); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var got []string
	for n := 99; n >= 0; n-- {
		name := path
		if n > 0 {
			name = path + "." + strconv.Itoa(n)
		}
		st, err := os.Stat(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ents := readEntries(t, name)
		if n > 0 {
			last := len(`{"log":"line 000\n","stream":"stdout","time":""}`+"\n") + 40
			if st.Size() < maxSize || st.Size() >= maxSize+int64(last) {
				t.Errorf("%s is %d bytes, want max-size (%d) plus at most one entry", name, st.Size(), maxSize)
			}
		}
		for _, e := range ents {
			got = append(got, e["log"])
		}
	}
	if len(got) != 200 {
		t.Fatalf("%d entries in all, want 200", len(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %03d\n", i); l != want {
			t.Fatalf("entry %d = %q, want %q", i, l, want)
		}
	}
}

// TestRelease checks that the pages a burst wrote into the batch buffer
// go back to the system once the stream is quiet, and that a pending
// partial line survives it.
func TestRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := w.Stream("stdout")
	s.Write([]byte(strings.Repeat("the quick brown fox jumps over the lazy d\n", 5000) + "part"))
	if n, err := sys.ResidentPages(w.batch[:cap(w.batch)]); err != nil || n == 0 {
		t.Fatalf("resident pages of the batch buffer after a burst = %d, %v; want some", n, err)
	}
	s.Release()
	if n, err := sys.ResidentPages(w.batch[:cap(w.batch)]); err != nil || n != 0 {
		t.Errorf("resident pages of the batch buffer after Release = %d, %v; want none", n, err)
	}
	s.Write([]byte("ial\n"))
	ents := readEntries(t, path)
	if got := ents[len(ents)-1]["log"]; len(ents) != 5001 || got != "partial\n" {
		t.Errorf("%d entries, last %q; want 5001, \"partial\\n\"", len(ents), got)
	}
}

// TestWriteAllocatesNothing checks that logging makes no garbage: bursts
// larger than a batch, and the quiet after them, allocate nothing on the
// Go heap once a stream has logged its first lines (issue 13). A shim
// whose heap does not grow never runs a garbage collection, whose
// runtime metadata would cost it more than a sleeping shim holds.
func TestWriteAllocatesNothing(t *testing.T) {
	w, err := OpenWith(filepath.Join(t.TempDir(), "c-json.log"), Options{Attrs: map[string]string{"tag": "web"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := w.Stream("stdout")
	burst := []byte(strings.Repeat("the quick brown fox jumps over the lazy d\n", 10000))
	long := []byte(strings.Repeat("\x01", 3*MaxLine) + "\n")
	s.Write(burst)
	s.Release()
	if n := testing.AllocsPerRun(5, func() {
		s.Write(burst)
		s.Write(long)
		s.Write([]byte("one line\n"))
		s.Release()
	}); n != 0 {
		t.Errorf("a burst and the quiet after it allocate %v times, want 0", n)
	}
}

// TestHugeAttrs checks that an entry larger than the batch buffer (huge
// attributes) is still logged whole.
func TestHugeAttrs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	big := strings.Repeat("v", batchCap)
	w, err := OpenWith(path, Options{Attrs: map[string]string{"big": big}})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream("stdout")
	s.Write([]byte("a\nb\n"))
	w.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var e struct {
			Log   string
			Attrs map[string]string
		}
		if err := json.Unmarshal(l, &e); err != nil || e.Attrs["big"] != big {
			t.Fatalf("entry of %d bytes: %v, attrs of %d bytes", len(l), err, len(e.Attrs["big"]))
		}
		logs = append(logs, e.Log)
	}
	if strings.Join(logs, "") != "a\nb\n" {
		t.Errorf("logged %q, want a, b", logs)
	}
}

// TestWriterMatchesAppendEntry checks that the writer's entries, built
// with a shared tail per stream and time, are AppendEntryAttrs' bytes.
func TestWriterMatchesAppendEntry(t *testing.T) {
	for _, attrs := range []map[string]string{nil, {"tag": "web<1>"}} {
		path := filepath.Join(t.TempDir(), "c-json.log")
		w, err := OpenWith(path, Options{Attrs: attrs})
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		for i, e := range []struct {
			stream, line string
			t            time.Time
		}{
			{"stdout", "a\n", ts}, {"stdout", "b\n", ts}, {"stderr", "c\n", ts}, {"stdout", "d", ts.Add(time.Second)},
			{"stdout", "", ts}, {"", "e\n", ts}, {"stdout", "<\xff>\n", ts.Add(time.Second)},
		} {
			if err := w.WriteEntry(e.stream, []byte(e.line), e.t); err != nil {
				t.Fatal(err)
			}
			AppendEntryAttrs(&want, e.stream, []byte(e.line), w.attrs, e.t)
			if i == 0 && attrs != nil && !bytes.Contains(want.Bytes(), []byte(`"attrs":{"tag":"web\u003c1\u003e"}`)) {
				t.Fatalf("attrs missing from %s", want.Bytes())
			}
		}
		w.Close()
		got, _ := os.ReadFile(path)
		if string(got) != want.String() {
			t.Errorf("attrs %v: writer wrote\n%s\nwant\n%s", attrs, got, want.Bytes())
		}
	}
}
