package websocket

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
)

// FuzzRead feeds arbitrary client bytes to the frame reader: it must never
// panic or return more bytes than the frames carry.
func FuzzRead(f *testing.F) {
	f.Add([]byte{0x82, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1})
	f.Add([]byte{0x89, 0x80, 0, 0, 0, 0, 0x88, 0x82, 0, 0, 0, 0, 3, 0xE8})
	f.Add([]byte{0x82, 0xFE, 0xFF, 0xFF, 0, 0, 0, 0})
	f.Add([]byte{0x82, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		defer server.Close()
		go io.Copy(io.Discard, client) // control answers
		defer client.Close()
		c := &Conn{conn: server, br: bufio.NewReader(bytes.NewReader(in))}
		n, _ := io.Copy(io.Discard, c)
		if n > int64(len(in)) {
			t.Fatalf("read %d payload bytes from %d input bytes", n, len(in))
		}
	})
}
