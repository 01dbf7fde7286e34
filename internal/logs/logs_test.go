package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"skiffd/internal/runtime/jsonlog"
)

var t0 = time.Date(2026, 11, 26, 8, 44, 40, 123456789, time.UTC)

// at is the time of the i-th test entry.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

// entry is what a test expects to receive.
type entry struct {
	stream, line string
	time         time.Time
	partial      bool
}

func (e entry) String() string {
	return fmt.Sprintf("%s %q %s partial=%v", e.stream, e.line, e.time.Format(time.RFC3339Nano), e.partial)
}

func fromMessage(m Message) entry {
	return entry{m.Stream, string(m.Line), m.Time, m.Partial}
}

// numbered is the i-th entry of a test log: equal lengths, alternating
// streams, one second apart.
func numbered(i int) entry {
	stream := "stdout"
	if i%2 == 1 {
		stream = "stderr"
	}
	return entry{stream, fmt.Sprintf("line %03d\n", i), at(i), false}
}

func numberedRange(from, to int) []entry {
	var out []entry
	for i := from; i < to; i++ {
		out = append(out, numbered(i))
	}
	return out
}

// openWriter opens the real writer; it is closed at cleanup.
func openWriter(t *testing.T, path string, maxSize int64, maxFiles int) *jsonlog.Writer {
	t.Helper()
	w, err := jsonlog.Open(path, maxSize, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w *jsonlog.Writer, entries ...entry) {
	t.Helper()
	for _, e := range entries {
		if err := w.WriteEntry(e.stream, []byte(e.line), e.time); err != nil {
			t.Fatal(err)
		}
	}
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func record(e entry) string {
	var b bytes.Buffer
	jsonlog.AppendEntry(&b, e.stream, []byte(e.line), e.time)
	return b.String()
}

// readAll reads without following and returns what fn received.
func readAll(t *testing.T, path string, opts ReadOptions) ([]entry, *reader) {
	t.Helper()
	var got []entry
	r := &reader{path: path, opts: opts, pollInterval: time.Millisecond, fn: func(m Message) error {
		got = append(got, fromMessage(m))
		return nil
	}}
	if err := r.run(context.Background(), nil); err != nil {
		t.Fatalf("Read(%+v) = %v", opts, err)
	}
	return got, r
}

func checkEntries(t *testing.T, what string, got, want []entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d messages, want %d\ngot:  %v\nwant: %v", what, len(got), len(want), got, want)
		return
	}
	for i := range want {
		if got[i].stream != want[i].stream || got[i].line != want[i].line ||
			!got[i].time.Equal(want[i].time) || got[i].partial != want[i].partial {
			t.Errorf("%s: message %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestReadAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	want := []entry{
		{"stdout", "out 0\n", at(0), false},
		{"stderr", "err 0\n", at(0).Add(30 * time.Microsecond), false},
		{"stdout", "CapInh:\t0000000000000000\n", at(1), false},
		{"stdout", "<a href=\"x\">&</a> \\ \u2028 é 日本\r\n", at(2), false},
		{"stderr", "no newline", at(3), true},
		{"stdout", "\x00\x01\x1f\x7f\n", at(4), false},
	}
	write(t, w, want...)
	got, r := readAll(t, path, ReadOptions{Tail: -1})
	checkEntries(t, "Read all", got, want)
	if r.corrupt != 0 {
		t.Errorf("corrupt records = %d, want 0", r.corrupt)
	}
}

func TestReadInvalidUTF8(t *testing.T) {
	// The writer replaces each invalid byte with U+FFFD; reading gives
	// that back.
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	write(t, w, entry{"stdout", "a\xffb\xc3\n", at(0), false})
	got, _ := readAll(t, path, ReadOptions{Tail: -1})
	checkEntries(t, "Read", got, []entry{{"stdout", "a\ufffdb\ufffd\n", at(0), false}})
}

func TestReadTailSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	write(t, w, numberedRange(0, 6)...)
	mid := func(i int) time.Time { return at(i).Add(500 * time.Millisecond) }
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want []entry
	}{
		{"all", ReadOptions{Tail: -1}, numberedRange(0, 6)},
		{"tail 0", ReadOptions{Tail: 0}, nil},
		{"tail 1", ReadOptions{Tail: 1}, numberedRange(5, 6)},
		{"tail 2", ReadOptions{Tail: 2}, numberedRange(4, 6)},
		{"tail 6", ReadOptions{Tail: 6}, numberedRange(0, 6)},
		{"tail 100", ReadOptions{Tail: 100}, numberedRange(0, 6)},
		{"since exact", ReadOptions{Tail: -1, Since: at(2)}, numberedRange(2, 6)},
		{"since between", ReadOptions{Tail: -1, Since: mid(2)}, numberedRange(3, 6)},
		{"until exact", ReadOptions{Tail: -1, Until: at(3)}, numberedRange(0, 4)},
		{"until between", ReadOptions{Tail: -1, Until: mid(3)}, numberedRange(0, 4)},
		{"window", ReadOptions{Tail: -1, Since: at(1), Until: mid(3)}, numberedRange(1, 4)},
		{"empty window", ReadOptions{Tail: -1, Since: mid(3), Until: mid(3)}, nil},
		{"since after all", ReadOptions{Tail: -1, Since: at(10)}, nil},
		// dockerd picks the tail first, then filters it.
		{"tail 3 since", ReadOptions{Tail: 3, Since: at(4)}, numberedRange(4, 6)},
		{"tail 3 until", ReadOptions{Tail: 3, Until: at(3)}, numberedRange(3, 4)},
		{"tail 2 since before", ReadOptions{Tail: 2, Since: at(0)}, numberedRange(4, 6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := readAll(t, path, tc.opts)
			checkEntries(t, fmt.Sprintf("Read(%+v)", tc.opts), got, tc.want)
		})
	}
}

func TestReadPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := openWriter(t, path, 0, 1)
	long := strings.Repeat("x", 2*jsonlog.MaxLine+100) + "\n"
	s := w.Stream("stdout")
	if _, err := s.Write([]byte("short\n" + long + "end")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := readAll(t, path, ReadOptions{Tail: -1})
	var lines []string
	var partial []bool
	for _, e := range got {
		lines = append(lines, e.line)
		partial = append(partial, e.partial)
	}
	wantLines := []string{"short\n", long[:jsonlog.MaxLine], long[jsonlog.MaxLine : 2*jsonlog.MaxLine], long[2*jsonlog.MaxLine:], "end"}
	wantPartial := []bool{false, true, true, false, true}
	if fmt.Sprint(partial) != fmt.Sprint(wantPartial) || len(lines) != len(wantLines) {
		t.Fatalf("Read: %d messages, partial %v; want %d, %v", len(lines), partial, len(wantLines), wantPartial)
	}
	for i := range wantLines {
		if lines[i] != wantLines[i] {
			t.Errorf("message %d = %.30q (len %d), want %.30q (len %d)", i, lines[i], len(lines[i]), wantLines[i], len(wantLines[i]))
		}
	}
	// Joined, the pieces are the line the container wrote.
	if j := strings.Join(lines[1:4], ""); j != long {
		t.Errorf("joined pieces: len %d, want %d", len(j), len(long))
	}
	// Tail counts records, as dockerd does: each piece is one.
	got, _ = readAll(t, path, ReadOptions{Tail: 2})
	if len(got) != 2 || got[0].line != long[2*jsonlog.MaxLine:] || got[1].line != "end" {
		t.Errorf("Read(tail 2) = %v, want the last piece and \"end\"", got)
	}
}

func TestReadRotated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	size := int64(len(record(numbered(0))))
	// Two entries a file; four files kept: entries 0 and 1 are rotated out.
	w := openWriter(t, path, 2*size, 4)
	write(t, w, numberedRange(0, 10)...)
	for _, name := range []string{path, path + ".1", path + ".2", path + ".3"} {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("the writer did not rotate as expected: %v", err)
		}
	}
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want []entry
	}{
		{"all", ReadOptions{Tail: -1}, numberedRange(2, 10)},
		{"tail 0", ReadOptions{Tail: 0}, nil},
		{"tail 1", ReadOptions{Tail: 1}, numberedRange(9, 10)},
		{"tail 2", ReadOptions{Tail: 2}, numberedRange(8, 10)},
		{"tail 3 across files", ReadOptions{Tail: 3}, numberedRange(7, 10)},
		{"tail 6", ReadOptions{Tail: 6}, numberedRange(4, 10)},
		{"tail 7", ReadOptions{Tail: 7}, numberedRange(3, 10)},
		{"tail 100", ReadOptions{Tail: 100}, numberedRange(2, 10)},
		{"since in the oldest file", ReadOptions{Tail: -1, Since: at(3)}, numberedRange(3, 10)},
		{"until in a rotated file", ReadOptions{Tail: -1, Until: at(5)}, numberedRange(2, 6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := readAll(t, path, tc.opts)
			checkEntries(t, fmt.Sprintf("Read(%+v)", tc.opts), got, tc.want)
		})
	}
}

func TestReadTornAndCorruptRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	// The first record is torn where the time begins, and yet a line:
	// it once crashed the reader.
	torn := `{"log":"x\n","stream":"stdout","time":` + "\n"
	appendRaw(t, path, torn+record(numbered(0))+"{not json\n"+record(numbered(1))+"\n  \n"+record(numbered(2)))
	half := record(numbered(3))
	appendRaw(t, path, half[:len(half)/2])
	for _, tc := range []struct {
		name string
		opts ReadOptions
		want []entry
	}{
		{"all", ReadOptions{Tail: -1}, numberedRange(0, 3)},
		{"tail 1", ReadOptions{Tail: 1}, numberedRange(2, 3)},
		// The corrupt and the blank records count as lines, as they do
		// for dockerd, though they are not sent.
		{"tail 3", ReadOptions{Tail: 3}, numberedRange(2, 3)},
		{"tail 4", ReadOptions{Tail: 4}, numberedRange(1, 3)},
		{"tail 0", ReadOptions{Tail: 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, r := readAll(t, path, tc.opts)
			checkEntries(t, fmt.Sprintf("Read(%+v)", tc.opts), got, tc.want)
			if tc.name == "all" && r.corrupt != 2 {
				t.Errorf("corrupt records = %d, want 2", r.corrupt)
			}
		})
	}
}

func TestReadMissing(t *testing.T) {
	err := Read(context.Background(), filepath.Join(t.TempDir(), "nope-json.log"), ReadOptions{Tail: -1}, nil,
		func(Message) error { return nil })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestReadCallbackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	write(t, openWriter(t, path, 0, 1), numberedRange(0, 3)...)
	boom := errors.New("client gone")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, nil, func(Message) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("Read = %v after %d messages, want %v after 1", err, n, boom)
	}
}

func TestReadEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	openWriter(t, path, 0, 1)
	for _, tail := range []int{-1, 0, 1} {
		if got, _ := readAll(t, path, ReadOptions{Tail: tail}); len(got) != 0 {
			t.Errorf("Read(empty, tail %d) = %v, want nothing", tail, got)
		}
	}
}

// TestTailReadsOnlyTheEnd checks that a tail of a large log reads a few
// blocks from its end, not the file.
func TestTailReadsOnlyTheEnd(t *testing.T) {
	const lines = 200_000
	path := filepath.Join(t.TempDir(), "c-json.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	var b bytes.Buffer
	for i := range lines {
		b.Reset()
		jsonlog.AppendEntry(&b, "stdout", fmt.Appendf(nil, "line %d\n", i), at(i))
		bw.Write(b.Bytes())
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tail := range []int{0, 1, 10, 1000} {
		got, r := readAll(t, path, ReadOptions{Tail: tail})
		if len(got) != tail {
			t.Fatalf("Read(tail %d) sent %d messages", tail, len(got))
		}
		for i, e := range got {
			if want := fmt.Sprintf("line %d\n", lines-tail+i); e.line != want {
				t.Fatalf("Read(tail %d) message %d = %q, want %q", tail, i, e.line, want)
			}
		}
		// Backwards to the tail start, then forwards over it again.
		limit := int64(2*tail*len(record(numbered(0)))) + 4*blockSize
		if r.bytesRead > limit {
			t.Errorf("Read(tail %d) of a %d-byte log read %d bytes, want at most %d", tail, st.Size(), r.bytesRead, limit)
		}
	}
}

func TestReadOverlongRecord(t *testing.T) {
	// A file that is not a log: a huge run without newlines is dropped
	// without being held in memory, and reading goes on after it.
	path := filepath.Join(t.TempDir(), "c-json.log")
	appendRaw(t, path, record(numbered(0))+strings.Repeat("x", 3*maxRecord)+"\n"+record(numbered(1)))
	var got []entry
	r := &reader{path: path, opts: ReadOptions{Tail: -1}, fn: func(m Message) error {
		got = append(got, fromMessage(m))
		return nil
	}}
	set, err := openSet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer set[0].close()
	c := &cursor{r: r, f: set[0]}
	if err := c.drain(context.Background(), -1); err != nil {
		t.Fatal(err)
	}
	checkEntries(t, "drain", got, numberedRange(0, 2))
	if cap(c.buf) > 2*maxRecord+blockSize {
		t.Errorf("buffer grew to %d bytes, want at most %d", cap(c.buf), 2*maxRecord+blockSize)
	}
	if r.corrupt != 1 {
		t.Errorf("corrupt records = %d, want 1", r.corrupt)
	}
}
