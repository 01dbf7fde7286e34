// Package websocket is the server side of RFC 6455, enough for Docker's
// websocket attach (GET /containers/{id}/attach/ws): the opening handshake,
// framing, client masking, ping/pong and the closing handshake. Each Write
// is one frame; Read returns the payloads of data frames as one byte stream
// (the semantics of golang.org/x/net/websocket.Conn that dockerd uses).
//
//	c, err := websocket.Upgrade(w, r)
//	c.Binary = true
//	io.Copy(c, c) // echo
package websocket

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxFrame bounds one incoming frame; attach input is keystrokes and pipes.
const maxFrame = 16 << 20

// Accept computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func Accept(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// HandshakeError is a request that is not a websocket opening handshake;
// nothing was hijacked, an HTTP answer can still be sent.
type HandshakeError struct{ Msg string }

func (e *HandshakeError) Error() string { return "websocket: " + e.Msg }

// Check validates r as an opening handshake without touching the
// connection.
func Check(r *http.Request) error {
	if r.Method != http.MethodGet {
		return &HandshakeError{"method must be GET"}
	}
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
		return &HandshakeError{"not a websocket upgrade request"}
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return &HandshakeError{"unsupported Sec-WebSocket-Version"}
	}
	if k, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key")); err != nil || len(k) != 16 {
		return &HandshakeError{"invalid Sec-WebSocket-Key"}
	}
	return nil
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Conn is a server-side websocket connection.
type Conn struct {
	// Binary makes Write send binary frames instead of text frames.
	Binary bool

	conn net.Conn
	br   *bufio.Reader

	wmu       sync.Mutex // one frame at a time
	closeSent bool

	// read state, owned by the reader
	remaining int64
	mask      [4]byte
	maskPos   int
	masked    bool
	eof       bool
}

// Upgrade answers the handshake with 101 and takes the connection over.
func Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	if err := Check(r); err != nil {
		return nil, err
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", Accept(r.Header.Get("Sec-WebSocket-Key")))
	if err := brw.Flush(); err != nil {
		nc.Close()
		return nil, err
	}
	return &Conn{conn: nc, br: brw.Reader}, nil
}

// NetConn is the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Write sends p as one data frame.
func (c *Conn) Write(p []byte) (int, error) {
	op := byte(opText)
	if c.Binary {
		op = opBinary
	}
	if err := c.writeFrame(op, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *Conn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	if op == opClose {
		c.closeSent = true
	}
	hdr := make([]byte, 2, 10+len(p))
	hdr[0] = 0x80 | op
	switch n := len(p); {
	case n < 126:
		hdr[1] = byte(n)
	case n <= 0xFFFF:
		hdr[1] = 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	_, err := c.conn.Write(append(hdr, p...))
	return err
}

// Read returns data frame payload bytes. It answers pings, skips pongs, and
// returns io.EOF once the client sends a close frame (answered with a
// close frame echoing its status code).
func (c *Conn) Read(p []byte) (int, error) {
	for c.remaining == 0 {
		if c.eof {
			return 0, io.EOF
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.br.Read(p)
	c.unmask(p[:n])
	c.remaining -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (c *Conn) unmask(p []byte) {
	if !c.masked {
		return
	}
	for i := range p {
		p[i] ^= c.mask[c.maskPos&3]
		c.maskPos++
	}
}

// nextFrame reads frame headers until a data frame with payload starts;
// control frames are handled on the way.
func (c *Conn) nextFrame() error {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return err
	}
	if h[0]&0x70 != 0 {
		c.fail(1002)
		return errors.New("websocket: reserved bits set")
	}
	op := h[0] & 0x0F
	n := int64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		n = int64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return err
		}
		n = int64(binary.BigEndian.Uint64(b[:]))
	}
	if h[1]&0x80 == 0 {
		// RFC 6455 5.1: a client frame must be masked.
		c.fail(1002)
		return errors.New("websocket: unmasked client frame")
	}
	if n < 0 || n > maxFrame {
		c.fail(1009)
		return errors.New("websocket: frame too large")
	}
	if _, err := io.ReadFull(c.br, c.mask[:]); err != nil {
		return err
	}
	c.masked, c.maskPos = true, 0
	switch op {
	case opText, opBinary, opContinuation:
		c.remaining = n
		return nil
	case opPing, opPong, opClose:
		if n > 125 {
			c.fail(1002)
			return errors.New("websocket: control frame too large")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return err
		}
		c.unmask(payload)
		switch op {
		case opPing:
			return c.writeFrame(opPong, payload)
		case opClose:
			c.eof = true
			echo := payload
			if len(echo) > 2 {
				echo = echo[:2]
			}
			c.writeFrame(opClose, echo)
		}
		return nil
	}
	c.fail(1002)
	return fmt.Errorf("websocket: unknown opcode %d", op)
}

// fail sends a close frame with code.
func (c *Conn) fail(code uint16) {
	c.writeFrame(opClose, binary.BigEndian.AppendUint16(nil, code))
}

// Close sends a normal close frame (if none was sent) and closes the
// connection.
func (c *Conn) Close() error {
	c.fail(1000)
	return c.conn.Close()
}
