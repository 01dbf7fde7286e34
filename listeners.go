package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"skiffd/internal/api/wire"
	"skiffd/internal/config"
	"skiffd/internal/policy"
)

// The default TCP ports, IANA-registered for Docker: plain and TLS.
const (
	defaultHTTPPort    = "2375"
	defaultTLSHTTPPort = "2376"
	// defaultHTTPHost is the host of a tcp address that names only a port.
	defaultHTTPHost = "localhost"
	// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
	listenFDsStart = 3
)

// listenAddr is one parsed -H value.
type listenAddr struct {
	Proto string // unix, tcp or fd
	Addr  string // a socket path, a host:port for net.Listen, or an fd number ("" for all)
	// Options is the listener's policy in canonical query form ("mode=ro",
	// "allow=containers:read,ping"); "" serves everything. See
	// internal/policy.
	Options string
}

// String formats the address as -H takes it, so that parseHost(a.String())
// gives a back.
func (a listenAddr) String() string {
	if a.Options != "" {
		return a.Key() + "?" + a.Options
	}
	return a.Key()
}

// Key is the address without its options: what is opened, and how a
// reload names the listener whose policy it changes.
func (a listenAddr) Key() string { return a.Proto + "://" + a.Addr }

// Policy is the listener's parsed policy.
func (a listenAddr) Policy() policy.Policy {
	p, _ := policy.Parse(a.Options) // valid: parseHost checked it
	return p
}

// parseHost parses one -H value the way dockerd does, with dockerd's error
// text:
//   - "" is the default: the unix socket, or tcp://localhost:2376 when TLS is
//     on (dockerd listens only on TCP when started with --tls and no -H).
//   - unix://path; an empty path is the default socket.
//   - tcp://host:port, with host defaulting to localhost and port to 2375
//     (even with TLS: only the fully-defaulted address uses 2376). A bare
//     host:port or :port is tcp.
//   - fd:// (every socket systemd passed) or fd://N; N is checked when the
//     listener opens.
//
// Unlike dockerd, port 0 (any free port) is accepted, which tests rely on,
// and ports above 65535 are refused here rather than at listen time.
func parseHost(val string, tlsEnabled bool) (listenAddr, error) {
	host, query, hasQuery := strings.Cut(strings.TrimSpace(val), "?")
	a, err := parseHostAddr(host, tlsEnabled)
	if err != nil || !hasQuery {
		return a, err
	}
	p, err := policy.Parse(query)
	if err != nil {
		return listenAddr{}, fmt.Errorf("invalid bind address (%s): %w", val, err)
	}
	a.Options = p.String()
	return a, nil
}

// parseHostAddr parses an -H value without its ?options.
func parseHostAddr(host string, tlsEnabled bool) (listenAddr, error) {
	if host == "" {
		if tlsEnabled {
			return listenAddr{Proto: "tcp", Addr: net.JoinHostPort(defaultHTTPHost, defaultTLSHTTPPort)}, nil
		}
		return listenAddr{Proto: "unix", Addr: config.DefaultUnixSocket}, nil
	}
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		proto, addr = "tcp", host
	}
	switch proto {
	case "tcp":
		hostPort, err := parseTCPAddr(host)
		if err != nil {
			return listenAddr{}, fmt.Errorf("invalid bind address (%s): %w", host, err)
		}
		return listenAddr{Proto: "tcp", Addr: hostPort}, nil
	case "unix":
		if strings.Contains(addr, "://") {
			return listenAddr{}, fmt.Errorf("invalid bind address (%s): invalid unix address: %s", host, addr)
		}
		if addr == "" {
			addr = config.DefaultUnixSocket
		}
		return listenAddr{Proto: "unix", Addr: addr}, nil
	case "fd":
		return listenAddr{Proto: "fd", Addr: addr}, nil
	}
	return listenAddr{}, fmt.Errorf("invalid bind address (%s): unsupported proto '%s'", host, proto)
}

// parseTCPAddr turns tcp://host:port, host:port, :port or host into a
// host:port for net.Listen, filling in localhost and port 2375.
func parseTCPAddr(address string) (string, error) {
	if !strings.Contains(address, "://") {
		address = "tcp://" + address
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", err
	}
	if u.Scheme != "tcp" {
		return "", fmt.Errorf("unsupported proto '%s'", u.Scheme)
	}
	if u.Path != "" {
		return "", errors.New("should not contain a path element")
	}
	// A percent-escape would decode into a host (or IPv6 zone) that no
	// longer reads back as the same address; zones on a daemon socket are
	// not worth that ambiguity.
	if strings.Contains(u.Host, "%") {
		return "", fmt.Errorf("invalid host: %s", u.Host)
	}
	host := u.Hostname()
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("invalid host: %s", u.Host)
	}
	if strings.Contains(host, ":") {
		// Only an IPv6 address may hold colons; url.Parse lets a few other
		// forms through that would not read back.
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", fmt.Errorf("invalid host: %s", u.Host)
		}
	}
	if host == "" {
		host = defaultHTTPHost
	}
	port := u.Port()
	if port != "" {
		if p, err := strconv.Atoi(port); err != nil || p > 65535 {
			return "", fmt.Errorf("invalid port: %s", port)
		}
	} else {
		port = defaultHTTPPort
	}
	return net.JoinHostPort(host, port), nil
}

// apiListener is an open API socket and the address it was opened for.
// The Addr field hides the embedded Listener's Addr method, so pass
// l.Listener where a net.Listener is wanted.
type apiListener struct {
	net.Listener
	Addr listenAddr
}

// openListeners opens every cfg.Hosts entry (or the default), in order,
// skipping duplicates. TCP and socket-activated listeners are wrapped in TLS
// when tlsConfig is not nil; unix sockets never are. Before opening anything
// it applies dockerd's rule for TCP without client verification (see
// checkTCPSecurity) to every tcp:// host, and to every TCP socket systemd
// passed as soon as its address is known (dockerd skips fd:// sockets;
// skiffd does not). On any failure it closes what it already opened (which
// removes the unix sockets it created) and returns the error.
//
// openListeners marks every file descriptor systemd passed as close-on-exec,
// used or not, so none leaks into containers. It does not change the
// process environment.
func openListeners(cfg *config.Config, tlsConfig *tls.Config, getenv func(string) string, logger *slog.Logger) (_ []apiListener, err error) {
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	var addrs []listenAddr
	seen := make(map[string]listenAddr)
	for _, h := range hosts {
		a, err := parseHost(h, cfg.TLS)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[a.Key()]; ok {
			if prev.Options != a.Options {
				return nil, fmt.Errorf("conflicting options for listener %s: %q and %q", a.Key(), prev.Options, a.Options)
			}
			continue
		}
		seen[a.Key()] = a
		if a.Proto == "tcp" {
			if err := checkTCPSecurity(a.String(), a.Addr, cfg, tlsConfig, logger); err != nil {
				return nil, err
			}
		}
		addrs = append(addrs, a)
	}

	act := newActivation(getenv)
	var opened []apiListener
	defer func() {
		if err != nil {
			for _, l := range opened {
				l.Close()
			}
		}
	}()
	for _, a := range addrs {
		switch a.Proto {
		case "unix":
			l, err := listenUnix(a.Addr, cfg, logger)
			if err != nil {
				return nil, err
			}
			opened = append(opened, apiListener{Listener: l, Addr: a})
		case "tcp":
			l, err := net.Listen("tcp", a.Addr)
			if err != nil {
				return nil, err
			}
			// Report the bound address, which differs from the asked one
			// for port 0.
			bound := listenAddr{Proto: "tcp", Addr: l.Addr().String(), Options: a.Options}
			if tlsConfig != nil {
				l = tls.NewListener(l, tlsConfig)
			}
			opened = append(opened, apiListener{Listener: l, Addr: bound})
		case "fd":
			ls, err := act.take(a.Addr)
			for _, fl := range ls {
				l := fl.Listener
				if tlsConfig != nil {
					l = tls.NewListener(l, tlsConfig)
				}
				fl.Addr.Options = a.Options
				opened = append(opened, apiListener{Listener: l, Addr: fl.Addr})
			}
			if err != nil {
				return nil, err
			}
			// A TCP socket systemd passed is held to the tcp:// rule: where
			// a socket came from does not change who can reach it (issue
			// 9, item 4). Its address is known only now, so a refusal
			// closes what was opened before it.
			for _, fl := range ls {
				if tcp, ok := fl.Listener.Addr().(*net.TCPAddr); ok {
					bound := tcp.AddrPort().String()
					if err := checkTCPSecurity(fmt.Sprintf("%s (tcp://%s)", fl.Addr, bound), bound, cfg, tlsConfig, logger); err != nil {
						return nil, err
					}
				}
			}
		}
		logger.Debug("listener created", "host", a.String())
	}
	return opened, nil
}

// checkTCPSecurity applies dockerd's policy for a TCP listener that does
// not verify client certificates: it is root access for anyone who can
// reach it. dockerd warns and, on a non-loopback address, stalls start-up
// for 15 seconds unless --tls or --tlsverify was given explicitly (true or
// false), announcing that this will become a hard failure. skiffd makes it
// that failure now. With the explicit opt-in it warns loudly and goes on.
// host names the listener in messages (tcp://..., or fd://N (tcp://...) for
// a socket systemd passed); hostPort is its address, host:port.
func checkTCPSecurity(host, hostPort string, cfg *config.Config, tlsConfig *tls.Config, logger *slog.Logger) error {
	if tlsConfig != nil && tlsConfig.ClientAuth == tls.RequireAndVerifyClientCert {
		return nil
	}
	logger.Warn("Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.", "host", host)
	logger.Warn("Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!", "host", host)
	ipAddr, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return fmt.Errorf("error parsing tcp address: %w", err)
	}
	if isLoopback(ipAddr) {
		return nil
	}
	if !cfg.TLSExplicit {
		return fmt.Errorf("refusing to listen on %s: binding to an IP address without --tlsverify gives root access on this machine to everyone who has access to your network; "+
			"generate TLS certificates and use --tlsverify, or explicitly specify '--tls=false' or '--tlsverify=false' to accept the risk", host)
	}
	if cfg.TLS {
		logger.Warn("API is accessible without TLS client verification: access to the remote API is equivalent to root access on the host", "host", "https://"+hostPort)
	} else {
		logger.Warn("API is accessible without encryption: access to the remote API is equivalent to root access on the host", "host", "http://"+hostPort)
	}
	return nil
}

// isLoopback reports whether host, a name or an IP address, means only
// this machine. A name counts when every address it resolves to is a
// loopback address; "localhost" is taken at its word, as dockerd does.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// listenUnix creates the unix socket at path with mode 0660, owned by the
// daemon's user and cfg.Group. As go-connections does, it binds, sets the
// owner and mode, and only then listens: until listen(2), connecting fails,
// so there is no window in which the socket is reachable with the wrong
// permissions, and the process umask is left alone.
//
// A stale socket at path is replaced; anything else there (a regular file,
// a directory) is an error and is left untouched, and so is a socket that
// a live process still answers on.
func listenUnix(path string, cfg *config.Config, logger *slog.Logger) (net.Listener, error) {
	gid, err := socketGID(cfg, path, logger)
	if err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("can't create unix socket %s: %w", path, err) }
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, wrap(err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, wrap(err)
	}

	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap(err)
	}
	f := os.NewFile(uintptr(fd), "unix:"+path)
	defer f.Close()
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		return nil, wrap(err)
	}
	ready := false
	defer func() {
		if !ready {
			os.Remove(path)
		}
	}()
	if err := os.Chown(path, os.Getuid(), gid); err != nil {
		return nil, wrap(err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return nil, wrap(err)
	}
	if err := syscall.Listen(fd, listenBacklog()); err != nil {
		return nil, wrap(err)
	}
	// FileListener works on a duplicate of fd; f's deferred Close drops the
	// original.
	l, err := net.FileListener(f)
	if err != nil {
		return nil, wrap(err)
	}
	// Closing the listener removes the socket file, so a stopped daemon
	// leaves nothing behind.
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	ready = true
	// Local clients (the docker CLI) get each list in one write.
	return wire.BatchListener{Listener: l}, nil
}

// listenBacklog is the accept queue length net.Listen would ask for: the
// kernel's net.core.somaxconn, else syscall.SOMAXCONN (128) when it cannot
// be read. listenUnix cannot use net.Listen (it must set the mode and group
// between bind and listen), and syscall.SOMAXCONN alone made a burst of a
// few hundred clients fail with EAGAIN (issue 9, item 13). Unlike the net
// package it does not clamp to 16 bits for kernels before 4.1, which
// skiffd does not run on.
func listenBacklog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return syscall.SOMAXCONN
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return syscall.SOMAXCONN
	}
	return min(n, math.MaxInt32)
}

// removeStaleSocket clears path for a new socket. Only a socket nobody
// listens on is removed.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (mode %v); not removing it", path, fi.Mode())
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return errors.New("another process is listening on it")
	}
	return os.Remove(path)
}

// socketGID is the group for unix sockets. A group named on purpose must
// exist (by name, else as a number); the default "docker" group that has
// gone missing since start-up only draws a warning, as in dockerd.
func socketGID(cfg *config.Config, path string, logger *slog.Logger) (int, error) {
	if cfg.Group == "" {
		return os.Getgid(), nil
	}
	if g, err := user.LookupGroup(cfg.Group); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			return gid, nil
		}
	}
	if gid, err := strconv.Atoi(cfg.Group); err == nil && gid >= 0 {
		return gid, nil
	}
	err := fmt.Errorf("group %s not found", cfg.Group)
	if cfg.GroupExplicit {
		return -1, fmt.Errorf("can't create unix socket %s: %w", path, err)
	}
	logger.Warn("could not change group of unix socket", "socket", path, "group", cfg.Group, "error", err)
	return os.Getgid(), nil
}

// activation holds the sockets systemd passed for socket activation
// (sd_listen_fds(3)): LISTEN_FDS descriptors from fd 3, valid only when
// LISTEN_PID is this process.
type activation struct {
	fds   []int
	taken map[int]bool
}

// maxListenFDs bounds LISTEN_FDS; systemd passes a handful, and a garbage
// count must not make start-up walk millions of descriptors.
const maxListenFDs = 4096

// newActivation reads the socket-activation variables through getenv and
// marks every passed descriptor close-on-exec.
func newActivation(getenv func(string) string) *activation {
	return newActivationAt(getenv, listenFDsStart)
}

// newActivationAt is newActivation with the first descriptor as a
// parameter, so that tests can stage descriptors away from 3, which the
// test binary itself may be using.
func newActivationAt(getenv func(string) string, first int) *activation {
	act := &activation{taken: make(map[int]bool)}
	pid, err := strconv.Atoi(getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return act
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n <= 0 || n > maxListenFDs {
		return act
	}
	for fd := first; fd < first+n; fd++ {
		syscall.CloseOnExec(fd)
		act.fds = append(act.fds, fd)
	}
	return act
}

// fdListener is one socket-activated listener.
type fdListener struct {
	net.Listener
	Addr listenAddr
}

// take opens the listeners for one fd:// address: all descriptors not yet
// taken for "" (or "*"), else the one numbered addr. Errors use dockerd's
// words. What was opened before an error is returned with it, for the
// caller to close.
func (act *activation) take(addr string) ([]fdListener, error) {
	if len(act.fds) == 0 {
		return nil, errors.New("no sockets found via socket activation: make sure the service was started by systemd")
	}
	var want []int
	if addr == "" || addr == "*" {
		for _, fd := range act.fds {
			if !act.taken[fd] {
				want = append(want, fd)
			}
		}
		if len(want) == 0 {
			return nil, errors.New("no sockets found via socket activation: all were taken by other fd:// hosts")
		}
	} else {
		fd, err := strconv.Atoi(addr)
		if err != nil {
			return nil, fmt.Errorf("failed to parse systemd fd address: should be a number: %v", addr)
		}
		if fd < act.fds[0] || fd > act.fds[len(act.fds)-1] {
			return nil, errors.New("too few socket activated files passed in by systemd")
		}
		if act.taken[fd] {
			return nil, fmt.Errorf("systemd activated file fd %d is already used by another fd:// host", fd)
		}
		want = []int{fd}
	}
	var out []fdListener
	for _, fd := range want {
		act.taken[fd] = true
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		// The listener holds a duplicate; the original number is released
		// either way.
		f.Close()
		if err != nil {
			return out, fmt.Errorf("failed to listen on systemd activated file: fd %d: %w", fd, err)
		}
		out = append(out, fdListener{Listener: l, Addr: listenAddr{Proto: "fd", Addr: strconv.Itoa(fd)}})
	}
	return out, nil
}

// listenerPolicies is the policy each -H address of cfg asks for, by
// listener key, for a reload. fd:// sockets keep the policy they started
// with: their addresses are known only once opened.
func listenerPolicies(cfg *config.Config) (map[string]policy.Policy, error) {
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	out := map[string]policy.Policy{}
	for _, h := range hosts {
		a, err := parseHost(h, cfg.TLS)
		if err != nil {
			return nil, err
		}
		if a.Proto == "fd" {
			continue
		}
		out[a.Key()] = a.Policy()
	}
	return out, nil
}
