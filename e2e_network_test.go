package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"skiffd/internal/netlink"
	"skiffd/internal/skifftest"
)

// startNetDaemon starts a daemon in a network namespace of its own (its
// "host"), so it may forward and masquerade without touching the test
// host, with busybox imported and every container removed at the end.
func startNetDaemon(t *testing.T) *skifftest.Daemon {
	t.Helper()
	d := skifftest.StartWith(t, skifftest.Options{OwnNetns: true})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	return d
}

// outside is "the internet" of a daemon: a network namespace the test
// creates, joined to the daemon's namespace by a veth (198.18.7.1 on the
// daemon's side, 198.18.7.2 outside), with an HTTP server on
// 198.18.7.2:8081 that answers with the client's address. The outside
// has no route back to any container subnet: only masquerade lets a
// container's connection be answered.
func outside(t *testing.T, d *skifftest.Daemon) string {
	url, _ := outsideAt(t, d, "skto0", netip.MustParsePrefix("198.18.7.1/24"), netip.MustParsePrefix("198.18.7.2/24"))
	return url
}

// outsideAt makes an outside namespace joined to the daemon's by a veth
// named link on the daemon's side, addressed mine there and theirs
// outside, with the HTTP server on theirs, port 8081, answering with the
// client's address. It returns the server's URL and the namespace.
func outsideAt(t *testing.T, d *skifftest.Daemon, link string, mine, theirs netip.Prefix) (string, *os.File) {
	t.Helper()
	out, err := netlink.NewNetns()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	dh, err := netlink.Open(int(d.Netns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer dh.Close()
	v, err := dh.AddVeth(netlink.Veth{Name: link, PeerName: "eth0", PeerNS: int(out.Fd()), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h, err := netlink.Open(int(d.Netns.Fd())); err == nil {
			h.DeleteLink(v.Index)
			h.Close()
		}
	})
	if err := dh.AddAddr(v.Index, mine); err != nil {
		t.Fatal(err)
	}
	oh, err := netlink.Open(int(out.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := oh.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "eth0" {
			if err := oh.AddAddr(l.Index, theirs); err != nil {
				t.Fatal(err)
			}
		}
		if err := oh.SetUp(l.Index); err != nil {
			t.Fatal(err)
		}
	}
	addr := net.JoinHostPort(theirs.Addr().String(), "8081")
	var ln net.Listener
	if err := netlink.Do(int(out.Fd()), func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "from %s\n", host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + addr + "/", out
}

// bridgeMembers lists the interfaces enslaved to the daemon's bridge.
func bridgeMembers(t *testing.T, d *skifftest.Daemon) []string {
	t.Helper()
	ns := netlink.Self
	if d.Netns != nil {
		ns = int(d.Netns.Fd())
	}
	h, err := netlink.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	br, err := h.LinkByName(d.Bridge)
	if err != nil {
		t.Fatalf("the daemon's bridge %s: %v", d.Bridge, err)
	}
	links, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range links {
		if l.MasterIndex == br.Index {
			out = append(out, l.Name)
		}
	}
	return out
}

// TestE2ENetworkDefaultBridge covers priority 1 of issue 14 through the
// CLI: eth0 on the default bridge with address, MAC, MTU and default
// route; outbound NAT to an outside namespace; container to container on
// the bridge; /etc/hosts with the container's address; host, none and
// container:<name> network modes; no veth left after removal.
func TestE2ENetworkDefaultBridge(t *testing.T) {
	d := startNetDaemon(t)
	url := outside(t, d)

	dockerOK(t, d, "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	ip := inspectField(t, d, "web", "{{.NetworkSettings.IPAddress}}")
	gw := inspectField(t, d, "web", "{{.NetworkSettings.Networks.bridge.Gateway}}")
	mac := inspectField(t, d, "web", "{{.NetworkSettings.Networks.bridge.MacAddress}}")
	nid := inspectField(t, d, "web", "{{.NetworkSettings.Networks.bridge.NetworkID}}")
	eid := inspectField(t, d, "web", "{{.NetworkSettings.Networks.bridge.EndpointID}}")
	plen := inspectField(t, d, "web", "{{.NetworkSettings.Networks.bridge.IPPrefixLen}}")
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() {
		t.Fatalf("web's IPAddress = %q", ip)
	}
	if !strings.HasPrefix(mac, "02:42:") || len(nid) != 64 || len(eid) != 64 || plen == "0" {
		t.Errorf("web's endpoint: MacAddress %q NetworkID %q EndpointID %q IPPrefixLen %s", mac, nid, eid, plen)
	}
	if hosts := dockerOK(t, d, "exec", "web", "cat", "/etc/hosts"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ip) + `\t[0-9a-f]{12}$`).MatchString(hosts) {
		t.Errorf("web's /etc/hosts has no line for its address %s:\n%s", ip, hosts)
	}

	out := dockerOK(t, d, "run", "--rm", "busybox", "sh", "-c", "ip addr show eth0; ip route")
	for _, want := range []string{"mtu 1500", "link/ether 02:42:", "/" + plen + " ", "default via " + gw + " dev eth0"} {
		if !strings.Contains(out, want) {
			t.Errorf("ip addr/route in a container lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`inet \d+\.\d+\.\d+\.\d+/` + plen).MatchString(out) {
		t.Errorf("eth0 has no IPv4 address:\n%s", out)
	}

	// Outbound NAT: the outside sees the daemon's address, not the
	// container's, and could not answer the container's otherwise.
	if got := dockerOK(t, d, "run", "--rm", "busybox", "wget", "-qO-", url); got != "from 198.18.7.1\n" {
		t.Errorf("outbound request answered %q, want the masqueraded source 198.18.7.1", got)
	}
	// Container to container across the bridge.
	if got := dockerOK(t, d, "run", "--rm", "busybox", "wget", "-qO-", "http://"+ip+":80/hostname"); strings.TrimSpace(got) != inspectField(t, d, "web", "{{.Config.Hostname}}") {
		t.Errorf("web's httpd through the bridge answered %q", got)
	}
	// container:<name> shares web's namespace: its loopback reaches httpd.
	if got := dockerOK(t, d, "run", "--rm", "--network", "container:web", "busybox", "wget", "-qO-", "127.0.0.1:80/hostname"); strings.TrimSpace(got) != inspectField(t, d, "web", "{{.Config.Hostname}}") {
		t.Errorf("httpd through container:web answered %q", got)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "host", "busybox", "ip", "addr"); !strings.Contains(got, d.Bridge) || !strings.Contains(got, "198.18.7.1/24") {
		t.Errorf("--network host does not see the daemon's interfaces:\n%s", got)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"); strings.Count(strings.TrimSpace(got), "\n") != 0 || !strings.Contains(got, "lo:") {
		t.Errorf("--network none has other interfaces than lo:\n%s", got)
	}

	if m := bridgeMembers(t, d); len(m) != 1 {
		t.Errorf("bridge members with one running container: %v", m)
	}
	dockerOK(t, d, "rm", "-f", "web")
	waitFor(t, "no veth left on the bridge", func() bool { return len(bridgeMembers(t, d)) == 0 })
}

// TestE2ENetworkRestartKeepsAddress: a running container keeps its address
// and connectivity across a kill -9 of the daemon, and the restarted
// daemon hands that address to no one else.
func TestE2ENetworkRestartKeepsAddress(t *testing.T) {
	d := startNetDaemon(t)
	url := outside(t, d)
	dockerOK(t, d, "run", "-d", "--name", "na", "busybox", "sleep", "1d")
	ip := inspectField(t, d, "na", "{{.NetworkSettings.IPAddress}}")
	// A stopped container's address is freed.
	dockerOK(t, d, "run", "-d", "--name", "nb", "busybox", "sleep", "1d")
	ipB := inspectField(t, d, "nb", "{{.NetworkSettings.IPAddress}}")
	dockerOK(t, d, "stop", "-t", "0", "nb")
	if got := inspectField(t, d, "nb", "{{.NetworkSettings.IPAddress}}"); got != "" {
		t.Errorf("stopped container still shows address %q", got)
	}
	d.Kill()
	d.Relaunch(t)
	if got := inspectField(t, d, "na", "{{.NetworkSettings.IPAddress}}"); got != ip {
		t.Errorf("after restart a's address is %q, want %q", got, ip)
	}
	if got := dockerOK(t, d, "exec", "na", "wget", "-qO-", url); got != "from 198.18.7.1\n" {
		t.Errorf("outbound after restart: %q", got)
	}
	for i := 0; i < 3; i++ {
		got := dockerOK(t, d, "run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr show eth0")
		if strings.Contains(got, " "+ip+"/") {
			t.Fatalf("a new container got a's address %s after the restart:\n%s", ip, got)
		}
	}
	dockerOK(t, d, "start", "nb")
	if got := inspectField(t, d, "nb", "{{.NetworkSettings.IPAddress}}"); got == "" || got == ip {
		t.Errorf("b restarted with address %q (was %q, a has %q)", got, ipB, ip)
	}
}

// TestE2ENetworkUserDefined covers docker network ls/create/inspect/
// connect/disconnect/rm, the embedded DNS (names, aliases, short IDs),
// --internal networks, isolation between networks and network events.
func TestE2ENetworkUserDefined(t *testing.T) {
	d := startNetDaemon(t)
	url := outside(t, d)
	since := time.Now().Add(-time.Second).Unix()

	ls := dockerOK(t, d, "network", "ls", "--format", "{{.Name}} {{.Driver}}")
	for _, want := range []string{"bridge bridge", "host host", "none null"} {
		if !strings.Contains(ls, want) {
			t.Errorf("network ls lacks %q:\n%s", want, ls)
		}
	}
	appID := strings.TrimSpace(dockerOK(t, d, "network", "create", "--subnet", "10.99.0.0/24", "app"))
	if got := inspectField(t, d, "app", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}"); got != "10.99.0.0/24 10.99.0.1" {
		t.Errorf("network inspect app IPAM: %q", got)
	}
	dockerOK(t, d, "run", "-d", "--network", "app", "--name", "db", "--network-alias", "database", "busybox", "sleep", "1d")
	dbIP := inspectField(t, d, "db", "{{.NetworkSettings.Networks.app.IPAddress}}")
	dbID := inspectField(t, d, "db", "{{.Id}}")
	if !strings.HasPrefix(dbIP, "10.99.0.") {
		t.Fatalf("db's address on app: %q", dbIP)
	}
	if got := inspectField(t, d, "db", "{{.NetworkSettings.Networks.app.Aliases}} {{.NetworkSettings.Networks.app.NetworkID}}"); got != "[database] "+appID {
		t.Errorf("db's endpoint on app: %q", got)
	}
	dockerOK(t, d, "run", "--rm", "--network", "app", "busybox", "ping", "-c1", "-W2", "db")
	for _, name := range []string{"db", "database", dbID[:12]} {
		out := dockerOK(t, d, "run", "--rm", "--network", "app", "busybox", "nslookup", name)
		if !strings.Contains(out, "Address: "+dbIP) && !strings.Contains(out, "Address 1: "+dbIP) {
			t.Errorf("nslookup %s on app:\n%s", name, out)
		}
	}
	if rc := dockerOK(t, d, "run", "--rm", "--network", "app", "busybox", "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 127.0.0.11") {
		t.Errorf("resolv.conf on a user-defined network:\n%s", rc)
	}
	// Outbound NAT from a user-defined network too.
	if got := dockerOK(t, d, "run", "--rm", "--network", "app", "busybox", "wget", "-qO-", url); got != "from 198.18.7.1\n" {
		t.Errorf("outbound from app: %q", got)
	}

	// connect and disconnect a running container of the default bridge.
	dockerOK(t, d, "run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	webBridgeIP := inspectField(t, d, "web", "{{.NetworkSettings.IPAddress}}")
	// Isolation: app cannot reach the default bridge's containers.
	if res := d.Docker(t, "run", "--rm", "--network", "app", "busybox", "wget", "-T", "2", "-qO-", "http://"+webBridgeIP+":80/hostname"); res.ExitCode == 0 {
		t.Errorf("a container on app reached one on the default bridge: %v", res)
	}
	dockerOK(t, d, "network", "connect", "app", "web")
	if ip := inspectField(t, d, "web", "{{.NetworkSettings.Networks.app.IPAddress}}"); !strings.HasPrefix(ip, "10.99.0.") {
		t.Errorf("web's address on app after connect: %q", ip)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "app", "busybox", "wget", "-qO-", "http://web:80/hostname"); strings.TrimSpace(got) != inspectField(t, d, "web", "{{.Config.Hostname}}") {
		t.Errorf("web by name on app: %q", got)
	}
	if got := inspectField(t, d, "app", "{{len .Containers}}"); got != "2" {
		t.Errorf("app's containers after connect: %s", got)
	}
	dockerOK(t, d, "network", "disconnect", "app", "web")
	if got := dockerOK(t, d, "exec", "web", "ip", "-o", "link"); strings.Contains(got, "eth1") {
		t.Errorf("web still has eth1 after disconnect:\n%s", got)
	}
	if got := inspectField(t, d, "app", "{{len .Containers}}"); got != "1" {
		t.Errorf("app's containers after disconnect: %s", got)
	}

	res := d.Docker(t, "network", "rm", "app")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "has active endpoints") {
		t.Errorf("network rm of a network in use: %v", res)
	}
	dockerOK(t, d, "rm", "-f", "db")
	dockerOK(t, d, "network", "rm", "app")
	if res := d.Docker(t, "network", "inspect", "app"); res.ExitCode == 0 {
		t.Errorf("app still exists after rm")
	}

	// --internal: no route out.
	dockerOK(t, d, "network", "create", "--internal", "priv")
	if out := dockerOK(t, d, "run", "--rm", "--network", "priv", "busybox", "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("an internal network has a default route:\n%s", out)
	}
	if res := d.Docker(t, "run", "--rm", "--network", "priv", "busybox", "wget", "-T", "2", "-qO-", url); res.ExitCode == 0 {
		t.Errorf("a container on an internal network reached the outside: %v", res)
	}
	dockerOK(t, d, "network", "prune", "-f")
	if res := d.Docker(t, "network", "inspect", "priv"); res.ExitCode == 0 {
		t.Errorf("priv survived network prune")
	}

	ev := dockerOK(t, d, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Unix()+1), "--filter", "type=network", "--format", "{{.Action}}")
	for _, want := range []string{"create", "connect", "disconnect", "destroy"} {
		if !strings.Contains(ev, want) {
			t.Errorf("network events lack %q:\n%s", want, ev)
		}
	}
}

// getIn fetches http://addr/path from inside network namespace ns (the
// daemon's, or the outside's), with HTTP/1.0, and returns the body.
func getIn(t *testing.T, ns *os.File, addr, path string) (string, error) {
	t.Helper()
	var conn net.Conn
	if err := netlink.Do(int(ns.Fd()), func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\n\r\n", path)
	b, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	_, body, _ := strings.Cut(string(b), "\r\n\r\n")
	return body, nil
}

// TestE2ENetworkPublishedPorts covers -p with a host IP, -p on every
// address reached from the outside, -P with random ports, docker port,
// the ps Ports column, a port already taken, and the rules surviving a
// kill -9 of the daemon.
// TestE2ENetworkRenameDNS: a running container renamed on a user-defined
// network answers to its new name in the embedded DNS and no longer to the
// old one (dockerd renames the sandbox's names), and inspect's DNSNames
// says so.
func TestE2ENetworkRenameDNS(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "--subnet", "10.98.0.0/24", "ren")
	dockerOK(t, d, "run", "-d", "--network", "ren", "--name", "db", "--network-alias", "database", "busybox", "sleep", "1d")
	ip := inspectField(t, d, "db", "{{.NetworkSettings.Networks.ren.IPAddress}}")
	dockerOK(t, d, "rename", "db", "db2")
	if got := inspectField(t, d, "db2", "{{.NetworkSettings.Networks.ren.DNSNames}}"); !strings.HasPrefix(got, "[db2 database ") || strings.Contains(got, "db ") {
		t.Errorf("DNSNames after the rename: %s", got)
	}
	for _, name := range []string{"db2", "database"} {
		out := dockerOK(t, d, "run", "--rm", "--network", "ren", "busybox", "nslookup", name)
		if !strings.Contains(out, "Address: "+ip) && !strings.Contains(out, "Address 1: "+ip) {
			t.Errorf("nslookup %s after the rename:\n%s", name, out)
		}
	}
	if res := d.Docker(t, "run", "--rm", "--network", "ren", "busybox", "nslookup", "db"); strings.Contains(res.Stdout, ip) {
		t.Errorf("the old name still resolves after the rename:\n%s", res.Stdout)
	}
}

// servesHostname polls GET addr/hostname from inside ns until it answers
// host (httpd may not listen yet right after docker run -d), for 10 s.
func servesHostname(t *testing.T, what string, ns *os.File, addr, host string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body, err := getIn(t, ns, addr, "/hostname")
		if err == nil && strings.TrimSpace(body) == host {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: GET %s = %q, %v; want %q", what, addr, body, err, host)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestE2ENetworkPublishedPorts(t *testing.T) {
	d := startNetDaemon(t)
	outside(t, d)
	dockerOK(t, d, "run", "-d", "--name", "web", "-p", "127.0.0.1:8080:80", "-p", "8081:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	host := inspectField(t, d, "web", "{{.Config.Hostname}}")
	check := func(what string, ns *os.File, addr string) {
		t.Helper()
		servesHostname(t, what, ns, addr, host)
	}
	check("loopback", d.Netns, "127.0.0.1:8080")
	check("host address", d.Netns, "198.18.7.1:8081")
	if got := dockerOK(t, d, "port", "web", "80"); !strings.Contains(got, "127.0.0.1:8080") || !strings.Contains(got, "0.0.0.0:8081") {
		t.Errorf("docker port web 80 = %q", got)
	}
	if got := dockerOK(t, d, "ps", "--format", "{{.Ports}}", "--filter", "name=web"); !strings.Contains(got, "127.0.0.1:8080->80/tcp") {
		t.Errorf("ps Ports = %q", got)
	}

	dockerOK(t, d, "run", "-d", "--name", "rnd", "-P", "--expose", "80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	hp := inspectField(t, d, "rnd", `{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}`)
	if p, err := strconv.Atoi(hp); err != nil || p < 1024 {
		t.Fatalf("-P gave host port %q", hp)
	}
	if body, err := getIn(t, d.Netns, "127.0.0.1:"+hp, "/hostname"); err != nil || strings.TrimSpace(body) != inspectField(t, d, "rnd", "{{.Config.Hostname}}") {
		t.Errorf("random port %s: %q, %v", hp, body, err)
	}

	// A host port another program holds: the start fails with the bind
	// error and nothing runs.
	var ln net.Listener
	if err := netlink.Do(int(d.Netns.Fd()), func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:8090")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := d.Docker(t, "run", "-d", "--name", "taken", "-p", "127.0.0.1:8090:80", "busybox", "sleep", "1d")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "address already in use") {
		t.Errorf("publishing a taken port: %v", res)
	}
	if got := inspectField(t, d, "taken", "{{.State.Running}}"); got != "false" {
		t.Errorf("the container with a taken port runs: %s", got)
	}
	// The same host port twice.
	if res := d.Docker(t, "run", "-d", "-p", "127.0.0.1:8080:80", "busybox", "sleep", "1d"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "already allocated") {
		t.Errorf("publishing a port twice: %v", res)
	}

	d.Kill()
	d.Relaunch(t)
	check("loopback after kill -9", d.Netns, "127.0.0.1:8080")
	check("host address after kill -9", d.Netns, "198.18.7.1:8081")
	if res := d.Docker(t, "run", "-d", "-p", "127.0.0.1:8080:80", "busybox", "sleep", "1d"); res.ExitCode == 0 {
		t.Errorf("after the restart, web's port was given again: %v", res)
	}
	dockerOK(t, d, "rm", "-f", "web")
	if _, err := getIn(t, d.Netns, "127.0.0.1:8080", "/hostname"); err == nil {
		t.Errorf("web's port still answers after its removal")
	}
}

// TestE2ENetworkStatsAndCleanup: docker stats' networks section counts a
// container's eth0 traffic, and removing containers and networks leaves
// no veth, bridge or rule of theirs behind.
func TestE2ENetworkStatsAndCleanup(t *testing.T) {
	d := startNetDaemon(t)
	url := outside(t, d)
	dockerOK(t, d, "network", "create", "app")
	brApp := "br-" + inspectField(t, d, "app", "{{.Id}}")[:12]
	dockerOK(t, d, "run", "-d", "--name", "st1", "--network", "app", "busybox", "sleep", "1d")
	dockerOK(t, d, "exec", "st1", "wget", "-qO-", url)
	out := dockerOK(t, d, "stats", "--no-stream", "--format", "{{.NetIO}}", "st1")
	if strings.HasPrefix(strings.TrimSpace(out), "0B / 0B") || strings.TrimSpace(out) == "--" {
		t.Errorf("stats NetIO after traffic: %q", out)
	}
	c := d.Client()
	resp, err := c.Get("http://skiffd/containers/st1/stats?stream=0")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Networks map[string]struct {
			RxBytes uint64 `json:"rx_bytes"`
			TxBytes uint64 `json:"tx_bytes"`
		} `json:"networks"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if n, ok := st.Networks["eth0"]; !ok || n.RxBytes == 0 || n.TxBytes == 0 {
		t.Errorf("stats networks = %+v, want eth0 with traffic", st.Networks)
	}

	dockerOK(t, d, "rm", "-f", "st1")
	dockerOK(t, d, "network", "rm", "app")
	h, err := netlink.Open(int(d.Netns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	waitFor(t, "the veths and app's bridge to go", func() bool {
		links, err := h.Links()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if strings.HasPrefix(l.Name, "skv") || l.Name == brApp {
				return false
			}
		}
		return true
	})
	nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	bridgeID := strings.TrimSpace(dockerOK(t, d, "network", "inspect", "--format", "{{.Id}}", "bridge"))
	for _, chain := range []string{"postrouting", "forward", "prerouting", "output"} {
		rules, err := nft.Rules(netlink.FamilyIP, chain)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if u := string(r.UserData); u != "net:"+bridgeID && !strings.HasPrefix(u, "localnet:") {
				t.Errorf("rule left in %s after removing everything: %q (bridge %s, app bridge %s)", chain, u, bridgeID, brApp)
			}
		}
	}
}

// TestE2ENetworkCrashChurn kills the daemon with SIGKILL while clients
// create networks, run containers on them and connect them, then checks
// after the restart: every running container keeps a unique address that
// the allocation files give to it and nobody else, no allocation is left
// to a container that does not run, and DNS and outbound NAT work.
func TestE2ENetworkCrashChurn(t *testing.T) {
	d := startNetDaemon(t)
	url := outside(t, d)
	dockerOK(t, d, "network", "create", "--subnet", "10.98.0.0/24", "churn")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("c%d", i)
			d.Docker(t, "run", "-d", "--name", name, "--network", "churn", "busybox", "sleep", "1d")
			d.Docker(t, "network", "create", fmt.Sprintf("n%d", i))
			d.Docker(t, "network", "connect", fmt.Sprintf("n%d", i), name)
		}
	}()
	waitFor(t, "a few containers to run", func() bool {
		return len(strings.Fields(d.Docker(t, "ps", "-q").Stdout)) >= 3
	})
	d.Kill()
	close(stop)
	<-done
	d.Relaunch(t)

	ids := strings.Fields(dockerOK(t, d, "ps", "-q", "--no-trunc"))
	if len(ids) < 3 {
		t.Fatalf("running after the restart: %d containers", len(ids))
	}
	running := map[string]bool{}
	byIP := map[string]string{}
	for _, id := range ids {
		running[id] = true
		ip := inspectField(t, d, id, "{{.NetworkSettings.Networks.churn.IPAddress}}")
		if ip == "" {
			t.Errorf("running container %s has no address on churn", id[:12])
			continue
		}
		if other, dup := byIP[ip]; dup {
			t.Errorf("address %s held by %s and %s", ip, id[:12], other[:12])
		}
		byIP[ip] = id
	}
	churnID := strings.TrimSpace(dockerOK(t, d, "network", "inspect", "--format", "{{.Id}}", "churn"))
	b, err := os.ReadFile(d.DataRoot + "/network/ipam/" + churnID + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Addrs map[string]string }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for a, owner := range st.Addrs {
		if owner != "gateway" && owner != "aux" && !running[owner] {
			t.Errorf("address %s still allocated to %s, which does not run", a, owner)
		}
		if owner != "gateway" && owner != "aux" && running[owner] && byIP[a] != owner {
			t.Errorf("allocation file gives %s to %s, inspect to %s", a, owner, byIP[a])
		}
	}
	for ip, id := range byIP {
		if st.Addrs[ip] != id {
			t.Errorf("%s's address %s is not allocated to it (%q)", id[:12], ip, st.Addrs[ip])
		}
	}
	name := strings.TrimPrefix(inspectField(t, d, ids[0], "{{.Name}}"), "/")
	if out := dockerOK(t, d, "run", "--rm", "--network", "churn", "busybox", "nslookup", name); !strings.Contains(out, inspectField(t, d, ids[0], "{{.NetworkSettings.Networks.churn.IPAddress}}")) {
		t.Errorf("DNS after the crash, nslookup %s:\n%s", name, out)
	}
	if got := dockerOK(t, d, "exec", ids[0], "wget", "-qO-", url); got != "from 198.18.7.1\n" {
		t.Errorf("outbound after the crash: %q", got)
	}
	if got := dockerOK(t, d, "exec", ids[0], "nslookup", strings.TrimPrefix(inspectField(t, d, ids[1], "{{.Name}}"), "/")); !strings.Contains(got, inspectField(t, d, ids[1], "{{.NetworkSettings.Networks.churn.IPAddress}}")) {
		t.Errorf("DNS from a restored container:\n%s", got)
	}
}

// TestE2ENetworkCrashBeforeStartRecorded: a daemon killed after a start
// wired the container's network and began its process, but before it
// recorded the run, comes back with the record of the create (the start's
// save never happened: simulated by putting the create's record back). The
// restore finds the process running and takes it as the truth; its
// endpoint must be recovered too: the address its interface has and the
// allocation file gives it shows in inspect, its name resolves, and its
// published port answers. (TestE2ENetworkCrashChurn hit this window at
// random: a running container without an address.)
func TestE2ENetworkCrashBeforeStartRecorded(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "--subnet", "10.97.0.0/24", "rec")
	id := strings.TrimSpace(dockerOK(t, d, "create", "--name", "web", "--network", "rec", "-p", "127.0.0.1:9123:80",
		"busybox", "httpd", "-f", "-p", "80", "-h", "/etc"))
	record := filepath.Join(d.DataRoot, "containers", id, "config.v2.json")
	created, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	dockerOK(t, d, "start", "web")
	ip := inspectField(t, d, "web", "{{.NetworkSettings.Networks.rec.IPAddress}}")
	if ip == "" {
		t.Fatal("no address on rec")
	}
	d.Kill()
	if err := os.WriteFile(record, created, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)

	if got := inspectField(t, d, "web", "{{.State.Running}} {{.NetworkSettings.Networks.rec.IPAddress}}"); got != "true "+ip {
		t.Errorf("after the restart: running and address %q, want %q", got, "true "+ip)
	}
	netID := strings.TrimSpace(dockerOK(t, d, "network", "inspect", "--format", "{{.Id}}", "rec"))
	b, err := os.ReadFile(filepath.Join(d.DataRoot, "network", "ipam", netID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Addrs map[string]string }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Addrs[ip] != id {
		t.Errorf("allocation file gives %s to %q, want %s", ip, st.Addrs[ip], id)
	}
	if out := dockerOK(t, d, "run", "--rm", "--network", "rec", "busybox", "nslookup", "web"); !strings.Contains(out, ip) {
		t.Errorf("nslookup web after the restart:\n%s", out)
	}
	if got := dockerOK(t, d, "port", "web", "80"); strings.TrimSpace(got) != "127.0.0.1:9123" {
		t.Errorf("docker port web 80 = %q, want 127.0.0.1:9123", got)
	}
	var body string
	waitFor(t, "the published port to answer", func() bool {
		err := netlink.Do(int(d.Netns.Fd()), func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:9123", 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /hostname HTTP/1.0\r\n\r\n")
			b, err := io.ReadAll(c)
			body = string(b)
			return err
		})
		return err == nil && strings.Contains(body, "200 OK")
	})
}

// TestCLINetworkEventsAtStartAndStop: as dockerd, every start of a
// container logs a network connect event for each of its networks (none
// included) before its start event, and every stop a disconnect after
// its die and before its destroy.
func TestCLINetworkEventsAtStartAndStop(t *testing.T) {
	d := startWithBusybox(t)
	dockerOK(t, d, "network", "create", "evnet")
	t.Cleanup(func() { d.Docker(t, "network", "rm", "evnet") })
	since := time.Now().Unix() - 1
	for _, nw := range []string{"evnet", "none"} {
		// Attached with --rm, the CLI returns once the container is gone.
		cidfile := filepath.Join(t.TempDir(), "cid")
		dockerOK(t, d, "run", "--rm", "--cidfile", cidfile, "--network", nw, "busybox", "true")
		b, err := os.ReadFile(cidfile)
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(b))
		ev := dockerOK(t, d, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(time.Now().Unix()+1),
			"--filter", "type=container", "--filter", "type=network",
			"--format", "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"container\"}} {{index .Actor.Attributes \"name\"}}")
		var seq []string
		for _, l := range strings.Split(strings.TrimSpace(ev), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 3 && f[0] == "container" && f[2] == id:
				seq = append(seq, "container "+f[1])
			case len(f) >= 5 && f[0] == "network" && f[3] == id:
				seq = append(seq, "network "+f[1]+" "+f[4])
			}
		}
		want := []string{"container create", "container attach", "network connect " + nw, "container start", "container die", "network disconnect " + nw, "container destroy"}
		if got := strings.Join(seq, ", "); got != strings.Join(want, ", ") {
			t.Errorf("events of a run on %s:\n%s\nwant:\n%s", nw, got, strings.Join(want, ", "))
		}
	}
}
