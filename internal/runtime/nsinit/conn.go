package nsinit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"skiffd/internal/binwire"
)

// maxMessage bounds one sync message (a spec with a compiled seccomp
// filter is about 60 KiB).
const maxMessage = 16 << 20

// Conn is the sync channel between the shim and init or the exec helper:
// a unix stream socket carrying JSON messages, each prefixed with its
// 4-byte big-endian length, optionally with one file descriptor attached
// to the message (SCM_RIGHTS). The socket is close-on-exec, so EOF tells
// the shim that init's execve succeeded.
type Conn struct {
	f *os.File
}

// NewConn wraps a connected unix stream socket.
func NewConn(f *os.File) *Conn { return &Conn{f: f} }

// Socketpair returns two connected, close-on-exec sync sockets.
func Socketpair() (parent, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// File returns the socket.
func (c *Conn) File() *os.File { return c.f }

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes v as one message, with fd attached when it is not nil.
func (c *Conn) Send(v Encodable, fd *os.File) error {
	var e binwire.Encoder
	v.AppendBinary(&e)
	b := e.B
	msg := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(msg, uint32(len(b)))
	copy(msg[4:], b)
	var oob []byte
	if fd != nil {
		oob = syscall.UnixRights(int(fd.Fd()))
	}
	sock := int(c.f.Fd())
	for len(msg) > 0 {
		n, err := syscall.SendmsgN(sock, msg, oob, nil, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync send: %w", err)
		}
		msg, oob = msg[n:], nil
	}
	return nil
}

// Recv reads one message into v and returns the fd attached to it, if
// any. It returns io.EOF when the peer closed (or exec'd) before sending.
func (c *Conn) Recv(v Decodable) (*os.File, error) {
	var hdr [4]byte
	oob := make([]byte, syscall.CmsgSpace(4))
	sock := int(c.f.Fd())
	got, oobn := 0, 0
	for got < len(hdr) {
		n, on, _, _, err := syscall.Recvmsg(sock, hdr[got:], oob[oobn:], syscall.MSG_CMSG_CLOEXEC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sync receive: %w", err)
		}
		if n == 0 {
			if got == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		got += n
		oobn += on
	}
	var fd *os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, m := range msgs {
				fds, err := syscall.ParseUnixRights(&m)
				if err != nil {
					continue
				}
				for _, f := range fds {
					if fd == nil {
						fd = os.NewFile(uintptr(f), "received")
					} else {
						syscall.Close(f)
					}
				}
			}
		}
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxMessage {
		return fd, errors.New("sync message too large")
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(rawReader{sock}, body); err != nil {
		return fd, fmt.Errorf("sync receive: %w", err)
	}
	d := binwire.NewDecoder(body)
	v.DecodeBinary(d)
	if err := d.Err(); err != nil {
		return fd, fmt.Errorf("sync receive: %w", err)
	}
	return fd, nil
}

// Encodable and Decodable are the sync channel's messages (config.go):
// they travel in binary form.
type (
	Encodable interface{ AppendBinary(*binwire.Encoder) }
	Decodable interface{ DecodeBinary(*binwire.Decoder) }
)

// rawReader reads a socket with read(2), bypassing the runtime poller:
// the sync sockets are blocking and are used from one locked thread.
type rawReader struct{ fd int }

func (r rawReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(r.fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
