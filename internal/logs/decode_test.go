package logs

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"skiffd/internal/runtime/jsonlog"
)

var recordTime = time.Date(2026, 11, 26, 8, 58, 20, 531376562, time.UTC)

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Message
		wantErr bool
	}{
		{in: `{"log":"hello from c1 pid=1\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Line: []byte("hello from c1 pid=1\n"), Time: recordTime}},
		{in: `{"log":"CapInh:\u00090000000000000000\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Line: []byte("CapInh:\t0000000000000000\n"), Time: recordTime}},
		{in: `{"log":"\u003ca\u003e\u0026 \"q\" \\ \/ \b\f\r\n","stream":"stderr","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stderr", Line: []byte("<a>& \"q\" \\ / \b\f\r\n"), Time: recordTime}},
		{in: `{"log":"piece","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Line: []byte("piece"), Time: recordTime, Partial: true}},
		{in: `{"log":"\ud83d\ude00 \ud83d x \ude00\n","stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Line: []byte("\U0001F600 \uFFFD x \uFFFD\n"), Time: recordTime}},
		{in: "{\"log\":\"bad \xff\xc3 utf8\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-26T08:58:20.531376562Z\"}",
			want: Message{Stream: "stdout", Line: []byte("bad \uFFFD\uFFFD utf8\n"), Time: recordTime}},
		// What dockerd adds or trims around the fields the writer uses.
		{in: "\x00\x00 {\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-26T08:58:20.531376562Z\"}\r",
			want: Message{Stream: "stdout", Line: []byte("x\n"), Time: recordTime}},
		{in: `{"log":"x\n","stream":"stdout","attrs":{"tag":"web"},"time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Line: []byte("x\n"), Time: recordTime}},
		{in: `{ "time": "2026-11-26T08:58:20.531376562Z", "stream": "stderr", "log": "x\n" }`,
			want: Message{Stream: "stderr", Line: []byte("x\n"), Time: recordTime}},
		{in: `{"Log":"x\n","STREAM":"stdout","time":"2026-11-26T08:58:20.531376562+01:00"}`,
			want: Message{Stream: "stdout", Line: []byte("x\n"), Time: recordTime.Add(-time.Hour)}},
		{in: `{"stream":"stdout","time":"2026-11-26T08:58:20.531376562Z"}`,
			want: Message{Stream: "stdout", Time: recordTime, Partial: true}},
		{in: `{"log":null,"stream":"stdout"}`, want: Message{Stream: "stdout", Partial: true}},
		{in: `{not json`, wantErr: true},
		{in: `{"log":"x","stream":"stdout","time":"yesterday"}`, wantErr: true},
		{in: `{"log":"x","time":"2026-11-26T08:58:20.5\u0033Z"}`, wantErr: true},
		{in: `{"log":"a\'b"}`, wantErr: true},
		{in: "{\"log\":\"a\tb\"}", wantErr: true},
		{in: `{"log":"x"} {}`, wantErr: true},
		{in: `{"log":"x"`, wantErr: true},
		{in: `{"log":"x","log":"y"}`, want: Message{Line: []byte("y"), Partial: true}},
		{in: " \t\r\n", wantErr: true},
	} {
		got, err := parseRecord([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseRecord(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got.Stream != tc.want.Stream || !bytes.Equal(got.Line, tc.want.Line) || !got.Time.Equal(tc.want.Time) || got.Partial != tc.want.Partial {
			t.Errorf("parseRecord(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// sameMessage reports whether a and b are equal, time zones included.
func sameMessage(a, b Message) bool {
	return a.Stream == b.Stream && bytes.Equal(a.Line, b.Line) && a.Time.Equal(b.Time) &&
		a.Time.String() == b.Time.String() && a.Partial == b.Partial
}

// sanitize is what the writer keeps of line: each invalid UTF-8 byte
// becomes U+FFFD.
func sanitize(line []byte) []byte {
	var out []byte
	for len(line) > 0 {
		r, n := utf8.DecodeRune(line)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, line[:n]...)
		}
		line = line[n:]
	}
	return out
}

func seedRecords(f *testing.F) {
	var b bytes.Buffer
	for _, line := range []string{"hello\n", "tab\there <>&\r\n", "bad \xff \u2028 \\ \"\n", "", "piece", "\x00\x7f"} {
		b.Reset()
		jsonlog.AppendEntry(&b, "stdout", []byte(line), recordTime)
		f.Add(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	}
	for _, s := range []string{
		`{"log":"\ud83d\ude00\ud83d\n","stream":"stderr","time":"2026-11-26T08:58:20Z"}`,
		`{"log":"x","attrs":{"a":"b"},"stream":"stdout","time":"2026-11-26T08:58:20Z"}`,
		`{"time":"2026-11-26T08:58:20.1+02:00","log":"\u0041"}`,
		`{"log":"x","log":"y"}`, `{"log":null}`, `{}`, `[]`, `{"log":"\`, `{"lo\"g":"x"}`,
		`{"log":0","stream":"stdout","time":"2026-11-26T08:58:20Z"}`,
		`{"log":"x\n","stream":"stdout","time":}`, `{"log":"x\n","stream":"stdout","time":"2026-11-26T08:58:20Z"`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseRecord checks that the fast path agrees with encoding/json on
// everything it accepts, and that nothing panics.
func FuzzParseRecord(f *testing.F) {
	seedRecords(f)
	d := &decoder{}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseRecord(b)
		trimmed := bytes.Trim(b, recordTrim)
		// A slab carried across inputs: lines carved from it must
		// decode the same as fresh copies.
		fast, ok := parseFast(trimmed, d)
		if !ok {
			in := bytes.Clone(trimmed)
			if _, ok := parseFast(in, &decoder{inPlace: true}); ok || !bytes.Equal(in, trimmed) {
				t.Fatalf("parseFast(%q) in place = %v, record now %q; want false, unchanged", trimmed, ok, in)
			}
			return
		}
		slow, slowErr := parseSlow(trimmed)
		if slowErr != nil {
			t.Fatalf("parseFast(%q) = %+v, but encoding/json fails: %v", trimmed, fast, slowErr)
		}
		if !sameMessage(fast, slow) {
			t.Fatalf("parseFast(%q) = %+v, encoding/json = %+v", trimmed, fast, slow)
		}
		if err != nil || !sameMessage(got, fast) {
			t.Fatalf("parseRecord(%q) = %+v, %v; want %+v", b, got, err, fast)
		}
		// The reader's decoders work in place, in the record itself;
		// a record they reject is left as it was.
		for _, borrow := range []bool{false, true} {
			in := bytes.Clone(trimmed)
			m, ok := parseFast(in, &decoder{inPlace: true, borrow: borrow})
			if !ok || !sameMessage(m, slow) {
				t.Fatalf("parseFast(%q) in place (borrow %v) = %+v, %v; want %+v", trimmed, borrow, m, ok, slow)
			}
		}
	})
}

// FuzzDecodeInPlace checks the reader's decoder, which works in place and
// knows the record before (plainLine), against parseRecord, after a record
// of the writer's that ends as most seeds do.
func FuzzDecodeInPlace(f *testing.F) {
	seedRecords(f)
	var prime bytes.Buffer
	jsonlog.AppendEntry(&prime, "stdout", []byte("first\n"), recordTime)
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := parseRecord(bytes.Clone(b))
		for _, borrow := range []bool{false, true} {
			d := &decoder{inPlace: true, borrow: borrow}
			if _, err := d.decode(bytes.TrimSuffix(bytes.Clone(prime.Bytes()), []byte("\n"))); err != nil {
				t.Fatal(err)
			}
			got, err := d.decode(bytes.Clone(b))
			if (err != nil) != (wantErr != nil) || (err == nil && !sameMessage(got, want)) {
				t.Fatalf("decode(%q) in place (borrow %v) = %+v, %v; want %+v, %v", b, borrow, got, err, want, wantErr)
			}
		}
	})
}

// FuzzRoundTrip writes a line with the writer's encoder and reads it back.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello\n"), false, int64(0))
	f.Add([]byte("\xff\xfe<>&\u2028\u2029\t\r\n"), true, int64(999999999))
	f.Add([]byte("\xed\xa0\xbd"), true, int64(1))
	f.Fuzz(func(t *testing.T, line []byte, stderr bool, nsec int64) {
		stream := "stdout"
		if stderr {
			stream = "stderr"
		}
		ts := recordTime.Add(time.Duration(nsec % int64(1000*time.Hour)))
		var b bytes.Buffer
		jsonlog.AppendEntry(&b, stream, line, ts)
		rec := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		got, err := parseRecord(rec)
		if err != nil {
			t.Fatalf("parseRecord(%q) = %v", rec, err)
		}
		want := Message{Stream: stream, Line: sanitize(line), Time: ts, Partial: isPartial(line)}
		if len(want.Line) == 0 {
			want.Line = nil
		}
		// The reader trims NULs and blanks only around the record, never
		// inside the escaped string.
		if !sameMessage(got, want) {
			t.Fatalf("round trip of %q: got %+v, want %+v", line, got, want)
		}
		if _, ok := parseFast(rec, nil); !ok {
			t.Fatalf("parseFast rejects the writer's %q", rec)
		}
	})
}

func BenchmarkParseRecord(b *testing.B) {
	var buf bytes.Buffer
	jsonlog.AppendEntry(&buf, "stdout", []byte("2026-11-26 08:58:20 INFO request handled path=/api/v1/items status=200 <ok>\n"), recordTime)
	rec := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, ok := parseFast(rec, nil); !ok {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(rec)))
		for b.Loop() {
			if _, err := parseSlow(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlainPrefix checks the eight-bytes-at-a-time scan against the byte
// loop for every byte value at every position of a 17-byte run.
func TestPlainPrefix(t *testing.T) {
	for c := range 256 {
		special := c == '"' || c == '\\' || c < 0x20 || c >= 0x80
		for pos := range 17 {
			b := []byte("abcdefghijklmnopq")
			b[pos] = byte(c)
			want := len(b)
			if special {
				want = pos
			}
			if got := plainPrefix(b); got != want {
				t.Fatalf("plainPrefix(%q) = %d, want %d", b, got, want)
			}
		}
	}
}
