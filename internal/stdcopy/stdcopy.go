// Package stdcopy frames several output streams onto one connection the way
// the Docker API does for non-TTY attach, exec and logs: every write becomes
// one frame with an 8-byte header
//
//	[stream, 0, 0, 0, size (uint32, big endian)] + payload
//
// where stream is 0 stdin, 1 stdout, 2 stderr, 3 systemerr (an error the
// daemon reports in band).
package stdcopy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// StdType names the stream a frame belongs to.
type StdType byte

// The streams of the Docker multiplexed format.
const (
	Stdin StdType = iota
	Stdout
	Stderr
	Systemerr
)

const headerLen = 8

// maxFrame bounds the payload a reader accepts in one frame, so a corrupt
// or hostile header cannot make it allocate gigabytes.
const maxFrame = 1 << 30

// Writer writes frames of one stream to a shared destination. Writers of
// different streams on the same destination must share its mutex, so frames
// never interleave mid-frame; NewWriters sets that up.
type Writer struct {
	mu     *sync.Mutex
	w      io.Writer
	stream StdType
	hdr    [headerLen]byte
}

// NewWriter returns a writer framing its writes as stream on w. Use it alone,
// or NewWriters when several streams share w.
func NewWriter(w io.Writer, stream StdType) *Writer {
	return &Writer{mu: new(sync.Mutex), w: w, stream: stream}
}

// NewWriters returns stdout and stderr writers that share w safely.
func NewWriters(w io.Writer) (stdout, stderr *Writer) {
	mu := new(sync.Mutex)
	return &Writer{mu: mu, w: w, stream: Stdout}, &Writer{mu: mu, w: w, stream: Stderr}
}

// Write sends p as one frame (an empty p sends nothing). It reports len(p)
// on success, as io.Writer requires, not the bytes of header and payload.
func (w *Writer) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		w.hdr = [headerLen]byte{byte(w.stream)}
		binary.BigEndian.PutUint32(w.hdr[4:], uint32(len(chunk)))
		if _, err := w.w.Write(w.hdr[:]); err != nil {
			return written, err
		}
		n, err := w.w.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(chunk):]
	}
	return written, nil
}

// AppendFrame appends p to dst as frames of stream (one frame unless p is
// over the frame limit; nothing for an empty p) and returns the extended
// slice. It lets a writer gather many frames into one write.
func AppendFrame(dst []byte, stream StdType, p []byte) []byte {
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		dst = append(dst, byte(stream), 0, 0, 0)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(chunk)))
		dst = append(dst, chunk...)
		p = p[len(chunk):]
	}
	return dst
}

// ErrSystem carries the message of a systemerr frame: the daemon reporting
// an error in the middle of a stream.
type ErrSystem struct{ Message string }

func (e *ErrSystem) Error() string { return "error from daemon in stream: " + e.Message }

// Copy demultiplexes src into stdout and stderr until src ends. It returns
// the payload bytes written. A systemerr frame ends the copy with
// *ErrSystem. A nil destination discards its stream.
func Copy(stdout, stderr io.Writer, src io.Reader) (int64, error) {
	var hdr [headerLen]byte
	var buf []byte
	var total int64
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			if err == io.EOF {
				return total, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return total, fmt.Errorf("stdcopy: truncated frame header: %w", err)
			}
			return total, err
		}
		size := binary.BigEndian.Uint32(hdr[4:])
		if size > maxFrame {
			return total, fmt.Errorf("stdcopy: frame of %d bytes is too large", size)
		}
		var dst io.Writer
		switch StdType(hdr[0]) {
		case Stdin, Stdout:
			dst = stdout
		case Stderr:
			dst = stderr
		case Systemerr:
		default:
			return total, fmt.Errorf("stdcopy: unknown stream id %d", hdr[0])
		}
		if StdType(hdr[0]) == Systemerr {
			msg := make([]byte, size)
			if _, err := io.ReadFull(src, msg); err != nil {
				return total, fmt.Errorf("stdcopy: truncated frame: %w", err)
			}
			return total, &ErrSystem{Message: string(msg)}
		}
		if dst == nil {
			dst = io.Discard
		}
		// Copy large frames through a bounded buffer.
		remaining := int64(size)
		for remaining > 0 {
			n := min(remaining, 32*1024)
			if int64(cap(buf)) < n {
				buf = make([]byte, 32*1024)
			}
			b := buf[:n]
			if _, err := io.ReadFull(src, b); err != nil {
				return total, fmt.Errorf("stdcopy: truncated frame: %w", err)
			}
			if _, err := dst.Write(b); err != nil {
				return total, err
			}
			total += n
			remaining -= n
		}
	}
}
