package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
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
	v, err := dh.AddVeth(netlink.Veth{Name: "skto0", PeerName: "eth0", PeerNS: int(out.Fd()), Up: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h, err := netlink.Open(int(d.Netns.Fd())); err == nil {
			h.DeleteLink(v.Index)
			h.Close()
		}
	})
	if err := dh.AddAddr(v.Index, netip.MustParsePrefix("198.18.7.1/24")); err != nil {
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
			if err := oh.AddAddr(l.Index, netip.MustParsePrefix("198.18.7.2/24")); err != nil {
				t.Fatal(err)
			}
		}
		if err := oh.SetUp(l.Index); err != nil {
			t.Fatal(err)
		}
	}
	var ln net.Listener
	if err := netlink.Do(int(out.Fd()), func() (err error) {
		ln, err = net.Listen("tcp", "198.18.7.2:8081")
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
	return "http://198.18.7.2:8081/"
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
