package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Netlink header flags, message types and socket options from
// include/uapi/linux/netlink.h that package syscall lacks.
const (
	nlmsgHdrLen = 16

	nlmFCapped  = 0x100 // NLM_F_CAPPED: the error does not echo the request's payload
	nlmFAckTLVs = 0x200 // NLM_F_ACK_TLVS: extended ACK attributes follow

	solNetlink         = 270 // SOL_NETLINK
	netlinkCapAck      = 10  // NETLINK_CAP_ACK
	netlinkExtAck      = 11  // NETLINK_EXT_ACK
	nlmsgerrAttrMsg    = 1   // NLMSGERR_ATTR_MSG
	nlmsgerrAttrOffs   = 2   // NLMSGERR_ATTR_OFFS
	recvBufSize        = 1 << 16
	defaultRecvTimeout = 10 * time.Second
)

// Error is a failure the kernel reported for one netlink request. Errno is
// the kernel's error; Msg is its extended ACK text when it sent one (for
// example "Chain not found"). errors.Is(err, syscall.EEXIST) works on it.
type Error struct {
	Op    string
	Errno syscall.Errno
	Msg   string
}

func (e *Error) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("netlink %s: %v: %s", e.Op, e.Errno, e.Msg)
	}
	return fmt.Sprintf("netlink %s: %v", e.Op, e.Errno)
}

func (e *Error) Unwrap() error { return e.Errno }

// message is one netlink message; Data aliases the receive buffer.
type message struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	Pid   uint32
	Data  []byte
}

// parseMessages splits a datagram into netlink messages. Like parseAttrs
// it rejects lengths that do not fit instead of panicking.
func parseMessages(b []byte) ([]message, error) {
	var out []message
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < nlmsgHdrLen || l > len(b) {
			return out, fmt.Errorf("netlink: message length %d with %d bytes left: %w", l, len(b), errShort)
		}
		out = append(out, message{
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
			Pid:   binary.NativeEndian.Uint32(b[12:16]),
			Data:  b[nlmsgHdrLen:l],
		})
		al := align4(l)
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return out, nil
}

// parseError decodes the payload of an NLMSG_ERROR message: the errno (0
// for an ACK) and, with extended ACKs, the kernel's message text.
func parseError(m message) (syscall.Errno, string, error) {
	if len(m.Data) < 4 {
		return 0, "", errShort
	}
	code := int32(binary.NativeEndian.Uint32(m.Data[0:4]))
	if code > 0 || code < -4095 {
		return 0, "", fmt.Errorf("netlink: error code %d out of range", code)
	}
	errno := syscall.Errno(-code)
	var text string
	if m.Flags&nlmFAckTLVs != 0 {
		// The original request header follows the code; its payload too
		// unless NLM_F_CAPPED says it was left out.
		off := 4 + nlmsgHdrLen
		if m.Flags&nlmFCapped == 0 && len(m.Data) >= 4+nlmsgHdrLen {
			off = 4 + int(binary.NativeEndian.Uint32(m.Data[4:8]))
		}
		if off >= 4+nlmsgHdrLen && align4(off) <= len(m.Data) {
			am, _ := attrMap(m.Data[align4(off):])
			text = cstr(am[nlmsgerrAttrMsg])
		}
	}
	return errno, text, nil
}

// conn is a netlink socket with request/response matching by sequence
// number. It is safe for concurrent use; requests are serialised.
type conn struct {
	mu    sync.Mutex
	fd    int
	proto int
	seq   uint32
	buf   []byte
}

// newConn creates a netlink socket of protocol proto in the calling
// thread's network namespace.
func newConn(proto int) (*conn, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Best effort: old kernels lack extended ACKs, and errors still work.
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkExtAck, 1)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkCapAck, 1)
	tv := syscall.NsecToTimeval(int64(defaultRecvTimeout))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	return &conn{fd: fd, proto: proto, seq: uint32(time.Now().UnixNano()), buf: make([]byte, recvBufSize)}, nil
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := syscall.Close(c.fd)
	c.fd = -1
	return err
}

// appendMsg appends a netlink header and body to b.
func appendMsg(b []byte, typ, flags uint16, seq uint32, body []byte) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(nlmsgHdrLen+len(body)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (c *conn) nextSeq() uint32 {
	c.seq++
	if c.seq == 0 {
		c.seq++
	}
	return c.seq
}

func (c *conn) send(b []byte) error {
	if c.fd < 0 {
		return errors.New("netlink: use of closed handle")
	}
	return syscall.Sendto(c.fd, b, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
}

// recv reads one datagram from the kernel and returns its messages. They
// alias c.buf and are valid until the next recv.
func (c *conn) recv() ([]message, error) {
	for {
		n, _, flags, from, err := syscall.Recvmsg(c.fd, c.buf, nil, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err == syscall.EAGAIN {
				return nil, fmt.Errorf("netlink: no reply from the kernel within %v: %w", defaultRecvTimeout, err)
			}
			return nil, fmt.Errorf("netlink recvmsg: %w", err)
		}
		if flags&syscall.MSG_TRUNC != 0 {
			return nil, errors.New("netlink: reply truncated")
		}
		if sa, ok := from.(*syscall.SockaddrNetlink); ok && sa.Pid != 0 {
			continue // not from the kernel
		}
		return parseMessages(c.buf[:n])
	}
}

// request sends one message and collects the replies that carry its
// sequence number until the ACK (or NLMSG_DONE of a dump). Each reply's Data
// is copied, so the result outlives the next request.
func (c *conn) request(op string, typ, flags uint16, body []byte) ([]message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq := c.nextSeq()
	flags |= syscall.NLM_F_REQUEST | syscall.NLM_F_ACK
	if err := c.send(appendMsg(nil, typ, flags, seq, body)); err != nil {
		return nil, fmt.Errorf("netlink %s: send: %w", op, err)
	}
	var out []message
	for {
		ms, err := c.recv()
		if err != nil {
			return nil, fmt.Errorf("netlink %s: %w", op, err)
		}
		for _, m := range ms {
			if m.Seq != seq {
				continue // a late reply to an earlier, abandoned request
			}
			switch m.Type {
			case syscall.NLMSG_ERROR:
				errno, text, err := parseError(m)
				if err != nil {
					return nil, fmt.Errorf("netlink %s: %w", op, err)
				}
				if errno != 0 {
					return nil, &Error{Op: op, Errno: errno, Msg: text}
				}
				return out, nil
			case syscall.NLMSG_DONE:
				// A dump ends here; an error code may ride along.
				if len(m.Data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(m.Data)); code < 0 {
						return nil, &Error{Op: op, Errno: syscall.Errno(-code)}
					}
				}
				// The kernel sends no ACK after a dump's NLMSG_DONE.
				return out, nil
			case syscall.NLMSG_NOOP:
			default:
				m.Data = append([]byte(nil), m.Data...)
				out = append(out, m)
			}
		}
	}
}

// req is one request of a batch (requestAll).
type req struct {
	op         string
	typ, flags uint16
	body       []byte
}

// requestAll sends reqs in one datagram, each with NLM_F_ACK, and waits
// for every one's answer: one system call each way instead of one pair
// per request. The kernel handles the messages in order and goes on after
// a failure, so every request gets an answer; the first failure in order
// is returned. It is for requests that answer with an ACK alone (changes,
// not dumps).
func (c *conn) requestAll(reqs []req) error {
	if len(reqs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var b []byte
	idx := make(map[uint32]int, len(reqs))
	for i, r := range reqs {
		seq := c.nextSeq()
		idx[seq] = i
		b = appendMsg(b, r.typ, r.flags|syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, seq, r.body)
	}
	if err := c.send(b); err != nil {
		return fmt.Errorf("netlink %s: send: %w", reqs[0].op, err)
	}
	errs := make([]error, len(reqs))
	for len(idx) > 0 {
		ms, err := c.recv()
		if err != nil {
			return fmt.Errorf("netlink %s: %w", reqs[0].op, err)
		}
		for _, m := range ms {
			i, ok := idx[m.Seq]
			if !ok || m.Type != syscall.NLMSG_ERROR {
				continue // a late reply to an earlier, abandoned request
			}
			delete(idx, m.Seq)
			errno, text, err := parseError(m)
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("netlink %s: %w", reqs[i].op, err)
			case errno != 0:
				errs[i] = &Error{Op: reqs[i].op, Errno: errno, Msg: text}
			}
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
