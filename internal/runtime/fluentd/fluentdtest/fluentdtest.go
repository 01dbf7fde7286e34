// Package fluentdtest is a Fluentd forward input for tests: it decodes
// the MessagePack messages log drivers send and answers the chunk IDs they
// ask to be acknowledged.
package fluentdtest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Decode reads one MessagePack value: the forms a forward message uses
// (nil, bools, ints, strings, binaries, arrays, maps, fixext8 as
// EventTime), decoded as a server would.
func Decode(r *bufio.Reader) (any, error) {
	c, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n := func(size int) (int, error) {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return 0, err
		}
		var v uint64
		for _, x := range b {
			v = v<<8 | uint64(x)
		}
		return int(v), nil
	}
	str := func(size int, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		b := make([]byte, size)
		_, err = io.ReadFull(r, b)
		return string(b), err
	}
	seq := func(size int, err error, isMap bool) (any, error) {
		if err != nil {
			return nil, err
		}
		if !isMap {
			a := make([]any, size)
			for i := range a {
				if a[i], err = Decode(r); err != nil {
					return nil, err
				}
			}
			return a, nil
		}
		m := map[string]any{}
		for range size {
			k, err := Decode(r)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("map key %v", k)
			}
			if m[ks], err = Decode(r); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	switch {
	case c < 0x80:
		return int64(c), nil
	case c&0xf0 == 0x80:
		return seq(int(c&0x0f), nil, true)
	case c&0xf0 == 0x90:
		return seq(int(c&0x0f), nil, false)
	case c&0xe0 == 0xa0:
		return str(int(c&0x1f), nil)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2, 0xc3:
		return c == 0xc3, nil
	case 0xd9:
		return str(n(1))
	case 0xda:
		return str(n(2))
	case 0xdb:
		return str(n(4))
	case 0xd0, 0xd1, 0xd2, 0xd3:
		v, err := n(1 << (c - 0xd0))
		return int64(v), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := n(1 << (c - 0xcc))
		return int64(v), err
	case 0xdc:
		l, err := n(2)
		return seq(l, err, false)
	case 0xde:
		l, err := n(2)
		return seq(l, err, true)
	case 0xd7:
		typ, err := r.ReadByte()
		if err != nil || typ != 0 {
			return nil, fmt.Errorf("ext type %d, %v", typ, err)
		}
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		return time.Unix(int64(binary.BigEndian.Uint32(b[:4])), int64(binary.BigEndian.Uint32(b[4:]))), nil
	}
	return nil, fmt.Errorf("type %#x", c)
}

// Server is a forward input on Ln: it decodes each message, answers the
// chunk IDs it is asked to (wrongly while Mangle is set) and passes the
// messages and their records' logs on.
type Server struct {
	Ln     net.Listener
	Logs   chan string
	Msgs   chan []any
	Mangle atomic.Bool
	Conns  atomic.Int32
}

// Serve listens on network and addr until the test ends.
func Serve(t *testing.T, network, addr string) *Server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Ln: ln, Logs: make(chan string, 1000), Msgs: make(chan []any, 1000)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.Conns.Add(1)
			go s.handle(c)
		}
	}()
	return s
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		v, err := Decode(r)
		if err != nil {
			return
		}
		a, _ := v.([]any)
		if len(a) != 4 {
			return
		}
		s.Msgs <- a
		if rec, ok := a[2].(map[string]any); ok {
			s.Logs <- fmt.Sprint(rec["log"])
		}
		if opt, ok := a[3].(map[string]any); ok && opt["chunk"] != nil {
			ack := opt["chunk"].(string)
			if s.Mangle.Load() {
				ack = "x" + ack
			}
			// {"ack": id}
			b := append([]byte{0x81, 0xa3}, "ack"...)
			b = append(b, 0xd9, byte(len(ack)))
			c.Write(append(b, ack...))
		}
	}
}

// Next is the log of the next message, within 10 s.
func (s *Server) Next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.Logs:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no message came")
		return ""
	}
}
