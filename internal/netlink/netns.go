package netlink

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"syscall"

	"skiffd/internal/sys"
)

// Self names the calling process's own network namespace (the daemon's)
// where a function takes a namespace file descriptor.
const Self = -1

// Do runs fn on a fresh OS thread that has joined the network namespace
// nsfd refers to (an open /proc/<pid>/ns/net, say), and returns fn's error.
// Sockets fn creates stay in that namespace for their whole life, so fn can
// hand them out; goroutines fn starts do not run in the namespace. The
// thread is locked and never unlocked, so the Go runtime discards it when fn
// returns and no other goroutine ever runs in the namespace by accident.
// With nsfd == Self, fn runs on a locked thread of the current namespace.
func Do(nsfd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread's namespace must die with it.
		if nsfd != Self {
			if err := sys.Setns(nsfd, syscall.CLONE_NEWNET); err != nil {
				errc <- fmt.Errorf("setns net: %w", err)
				return
			}
		}
		errc <- fn()
	}()
	return <-errc
}

// NewNetns creates a new, empty network namespace (only a down loopback in
// it) and returns a file that keeps it alive: the namespace goes away when
// the file and every socket and process in it are closed or gone. The
// calling thread's namespace is left alone.
func NewNetns() (*os.File, error) {
	var f *os.File
	err := Do(Self, func() error {
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare net: %w", err)
		}
		var err error
		f, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	return f, err
}

// sysctlPath checks that name is a net/ sysctl, written with slashes
// ("net/ipv4/ip_forward", "net/ipv4/conf/skiff0/route_localnet"; slashes
// because interface names may contain dots), and returns its /proc path.
func sysctlPath(name string) (string, error) {
	clean := path.Clean(name)
	if clean != name || !strings.HasPrefix(name, "net/") || strings.Contains(name, "..") {
		return "", fmt.Errorf("sysctl %q: not a net/ sysctl path", name)
	}
	return "/proc/sys/" + name, nil
}

// Sysctl reads a per-namespace sysctl under /proc/sys/net from inside the
// namespace nsfd (or Self), trailing newline removed.
func Sysctl(nsfd int, name string) (string, error) {
	p, err := sysctlPath(name)
	if err != nil {
		return "", err
	}
	var v string
	err = Do(nsfd, func() error {
		b, err := os.ReadFile(p)
		v = strings.TrimSuffix(string(b), "\n")
		return err
	})
	return v, err
}

// SetSysctl writes a per-namespace sysctl under /proc/sys/net from inside
// the namespace nsfd (or Self). A new namespace inherits some IPv4 values
// from the host's, so set every value you rely on.
func SetSysctl(nsfd int, name, value string) error {
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	return Do(nsfd, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString(value)
		return errors.Join(err, f.Close())
	})
}

// WriteSysctl writes a per-namespace sysctl under /proc/sys/net in the
// network namespace of the calling thread, for use inside Do; outside it
// the goroutine may run on any thread of the daemon's namespace.
func WriteSysctl(name, value string) error {
	p, err := sysctlPath(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	return errors.Join(err, f.Close())
}
