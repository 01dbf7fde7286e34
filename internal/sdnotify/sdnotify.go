// Package sdnotify tells systemd about the daemon's state (sd_notify(3)):
// READY=1 once the API listens, RELOADING=1 while a SIGHUP reload runs,
// STOPPING=1 when shutdown begins. Issue 12, item 5.
//
//	n := sdnotify.New(os.Getenv)
//	n.Send(sdnotify.Ready)
//
// Messages go as one datagram to the unix socket named by $NOTIFY_SOCKET:
// a path, or an abstract socket when it starts with "@". Without the
// variable every Send is a no-op, so the daemon behaves the same outside
// systemd.
package sdnotify

import (
	"net"
	"strconv"
	"time"

	"skiffd/internal/sys"
)

// The states the daemon reports.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Reloading is RELOADING=1 with the MONOTONIC_USEC that systemd 253 and
// later want for Type=notify-reload (the CLOCK_MONOTONIC time of the
// reload's start); older systemd ignores the extra field.
func Reloading() string {
	usec, _ := sys.MonotonicMicros()
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
}

// Notifier sends to one notify socket.
type Notifier struct {
	addr string
}

// New reads $NOTIFY_SOCKET through getenv.
func New(getenv func(string) string) *Notifier {
	return &Notifier{addr: getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether there is a socket to notify.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Send sends state; it does nothing (and returns nil) without
// $NOTIFY_SOCKET.
func (n *Notifier) Send(state string) error {
	if !n.Enabled() {
		return nil
	}
	name := n.addr
	// An abstract socket is "@name" both for systemd and for package net.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Write([]byte(state))
	return err
}
