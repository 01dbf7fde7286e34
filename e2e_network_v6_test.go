package main

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/netlink"
	"skiffd/internal/network/ipam"
	"skiffd/internal/skifftest"
)

// outside6 is the IPv6 "internet" of a daemon: a network namespace the
// test creates, joined to the daemon's namespace by a veth
// (fd7e:18:7::1 on the daemon's side, fd7e:18:7::2 outside), with an HTTP
// server on [fd7e:18:7::2]:8081 that answers with the client's address.
// The outside has no route back to any container subnet: only IPv6
// masquerade lets a container's connection be answered. It returns the
// server's URL and the outside namespace.
func outside6(t *testing.T, d *skifftest.Daemon) (string, *os.File) {
	return outsideAt(t, d, "skto6", netip.MustParsePrefix("fd7e:18:7::1/64"), netip.MustParsePrefix("fd7e:18:7::2/64"))
}

// retryOK runs docker args until it succeeds or 10 s have passed (a
// server just started with docker run -d may not listen yet), and
// returns the last output.
func retryOK(t *testing.T, d *skifftest.Daemon, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := d.Docker(t, args...)
		if res.ExitCode == 0 {
			return res.Stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker %s: %v", strings.Join(args, " "), res)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2ENetworkIPv6 covers docker network create --ipv6 with a subnet
// from the ULA pool and with a given one: inspect, the containers' IPv6
// addresses, gateways and default routes, no DAD delay, IPv6 disabled on
// the interfaces of IPv4-only networks, AAAA and PTR answers of the
// embedded DNS, ping6 by name, /etc/hosts, --ip6 and its release.
func TestE2ENetworkIPv6(t *testing.T) {
	d := startNetDaemon(t)

	// IPv6 forwarding is host-wide: it is turned on by the first IPv6
	// network, not before.
	if got := ipv6Forwarding(t, d.Netns); got != "0" {
		t.Errorf("IPv6 forwarding before any IPv6 network = %s, want 0", got)
	}
	// IPv6-only networks are refused with a clear error, not created with
	// IPv4 anyway.
	if res := d.Docker(t, "network", "create", "--ipv4=false", "--ipv6", "only6"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "does not support IPv6-only networks") {
		t.Errorf("network create --ipv4=false: %v", res)
	}
	if res := d.Docker(t, "network", "inspect", "only6"); res.ExitCode == 0 {
		t.Errorf("a refused IPv6-only network exists: %s", res.Stdout)
	}
	dockerOK(t, d, "network", "create", "--ipv6", "net6")
	if got := ipv6Forwarding(t, d.Netns); got != "1" {
		t.Errorf("IPv6 forwarding with an IPv6 network = %s, want 1", got)
	}
	if got := inspectField(t, d, "net6", "{{.EnableIPv4}} {{.EnableIPv6}} {{len .IPAM.Config}}"); got != "true true 2" {
		t.Fatalf("network inspect net6: %q, want IPv4 and IPv6 with two IPAM configs", got)
	}
	sub6 := inspectField(t, d, "net6", "{{(index .IPAM.Config 1).Subnet}}")
	gw6 := inspectField(t, d, "net6", "{{(index .IPAM.Config 1).Gateway}}")
	// As dockerd 28: a /64 of the /48 ULA prefix derived from the engine ID.
	ula := ipam.ULAPool(strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{.ID}}")))
	p, err := netip.ParsePrefix(sub6)
	if err != nil || p.Bits() != 64 || !ula.Base.Contains(p.Addr()) {
		t.Errorf("net6's IPv6 subnet %q is not a /64 of %s", sub6, ula.Base)
	}
	if err == nil && gw6 != p.Addr().Next().String() {
		t.Errorf("net6's IPv6 gateway %q, want %s", gw6, p.Addr().Next())
	}

	dockerOK(t, d, "run", "-d", "--network", "net6", "--name", "a6", "--network-alias", "alias6", "busybox", "sleep", "1d")
	a6 := inspectField(t, d, "a6", "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}}")
	if a, err := netip.ParseAddr(a6); err != nil || !p.Contains(a) {
		t.Fatalf("a6's IPv6 address %q is not in %s", a6, sub6)
	}
	if got := inspectField(t, d, "a6", "{{.NetworkSettings.Networks.net6.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.net6.IPv6Gateway}}"); got != "64 "+gw6 {
		t.Errorf("a6's IPv6 prefix length and gateway: %q", got)
	}
	// Only the default bridge's endpoint shows at the top level.
	if got := inspectField(t, d, "a6", "{{.NetworkSettings.GlobalIPv6Address}}"); got != "" {
		t.Errorf("top-level GlobalIPv6Address of a container on net6: %q", got)
	}
	if got := inspectField(t, d, "net6", `{{range .Containers}}{{.IPv6Address}}{{end}}`); got != a6+"/64" {
		t.Errorf("net6's Containers IPv6Address: %q", got)
	}
	// No duplicate address detection: the address is usable at once.
	addr := dockerOK(t, d, "exec", "a6", "ip", "-o", "-6", "addr", "show", "eth0")
	if line := lineWith(addr, "inet6 "+a6+"/64 "); line == "" || strings.Contains(line, "tentative") {
		t.Errorf("a6's eth0 (want %s/64, not tentative):\n%s", a6, addr)
	}
	if got := dockerOK(t, d, "exec", "a6", "ip", "-6", "route", "show", "default"); !strings.Contains(got, "via "+gw6) {
		t.Errorf("a6's IPv6 default route:\n%s", got)
	}
	if got := dockerOK(t, d, "exec", "a6", "cat", "/etc/hosts"); !strings.Contains(got, a6+"\t") {
		t.Errorf("a6's /etc/hosts lacks its IPv6 address %s:\n%s", a6, got)
	}

	// Another container reaches a6 by name and alias over IPv6.
	for _, name := range []string{"a6", "alias6"} {
		out := dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "nslookup", "-type=AAAA", name)
		if !strings.Contains(out, a6) {
			t.Errorf("nslookup -type=AAAA %s:\n%s", name, out)
		}
	}
	out := dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "nslookup", a6)
	if !strings.Contains(out, "a6.net6") {
		t.Errorf("PTR of %s:\n%s", a6, out)
	}
	dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "ping", "-6", "-c1", "-W2", "a6")

	// --ip6 on a network with a given subnet and range; the address is
	// free again once its container is gone.
	// Given IPv6 first, listed after IPv4 as dockerd lists them.
	dockerOK(t, d, "network", "create", "--ipv6", "--subnet", "fd00:99:1::/64", "--gateway", "fd00:99:1::fe", "--ip-range", "fd00:99:1::100/120",
		"--subnet", "10.97.0.0/24", "net6b")
	if got := inspectField(t, d, "net6b", "{{(index .IPAM.Config 0).Subnet}}"); got != "10.97.0.0/24" {
		t.Errorf("net6b's first IPAM config: %q, want the IPv4 one", got)
	}
	if got := inspectField(t, d, "net6b", "{{(index .IPAM.Config 1).Subnet}} {{(index .IPAM.Config 1).Gateway}} {{(index .IPAM.Config 1).IPRange}}"); got != "fd00:99:1::/64 fd00:99:1::fe fd00:99:1::100/120" {
		t.Errorf("net6b's IPv6 IPAM config: %q", got)
	}
	dockerOK(t, d, "run", "-d", "--network", "net6b", "--name", "dyn", "busybox", "sleep", "1d")
	if got := inspectField(t, d, "dyn", "{{.NetworkSettings.Networks.net6b.GlobalIPv6Address}}"); got != "fd00:99:1::100" {
		t.Errorf("dynamic address in the ip-range: %q, want fd00:99:1::100", got)
	}
	dockerOK(t, d, "run", "-d", "--network", "net6b", "--ip6", "fd00:99:1::42", "--name", "st", "busybox", "sleep", "1d")
	if got := inspectField(t, d, "st", "{{.NetworkSettings.Networks.net6b.GlobalIPv6Address}} {{.NetworkSettings.Networks.net6b.IPAMConfig.IPv6Address}}"); got != "fd00:99:1::42 fd00:99:1::42" {
		t.Errorf("--ip6: %q", got)
	}
	if got := dockerOK(t, d, "exec", "st", "ip", "-6", "addr", "show", "eth0"); !strings.Contains(got, "fd00:99:1::42/64") {
		t.Errorf("st's eth0:\n%s", got)
	}
	if res := d.Docker(t, "run", "-d", "--network", "net6b", "--ip6", "fd00:99:1::42", "busybox", "sleep", "1d"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Address already in use") {
		t.Errorf("the same --ip6 twice: %v", res)
	}
	// As dockerd, at create: an --ip6 outside the subnets, or on a
	// network without IPv6.
	if res := d.Docker(t, "create", "--network", "net6b", "--ip6", "fd00:98::1", "busybox"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "invalid endpoint settings:\nno configured subnet contains IP address fd00:98::1") {
		t.Errorf("--ip6 outside the subnet: %v", res)
	}
	dockerOK(t, d, "network", "create", "--subnet", "10.98.0.0/24", "only4")
	if res := d.Docker(t, "create", "--network", "only4", "--ip6", "fd00:99:1::7", "busybox"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "no configured subnet contains IP address fd00:99:1::7") {
		t.Errorf("--ip6 on an IPv4-only network: %v", res)
	}
	dockerOK(t, d, "rm", "-f", "st")
	dockerOK(t, d, "run", "-d", "--network", "net6b", "--ip6", "fd00:99:1::42", "--name", "st2", "busybox", "sleep", "1d")

	// connect: a running container of an IPv4-only network gets an IPv6
	// interface; IPv6 is off on its IPv4-only eth0, as dockerd does it.
	dockerOK(t, d, "network", "create", "v4only")
	dockerOK(t, d, "run", "-d", "--network", "v4only", "--name", "c4", "busybox", "sleep", "1d")
	if got := strings.TrimSpace(dockerOK(t, d, "exec", "c4", "cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")); got != "1" {
		t.Errorf("disable_ipv6 on an IPv4-only network's interface = %s, want 1", got)
	}
	dockerOK(t, d, "network", "connect", "net6", "c4")
	c4 := inspectField(t, d, "c4", "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}}")
	if a, err := netip.ParseAddr(c4); err != nil || !p.Contains(a) {
		t.Fatalf("c4's IPv6 address on net6 after connect: %q", c4)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "exec", "c4", "cat", "/proc/sys/net/ipv6/conf/eth1/disable_ipv6")); got != "0" {
		t.Errorf("disable_ipv6 on the IPv6 network's interface = %s, want 0", got)
	}
	if got := dockerOK(t, d, "exec", "c4", "ip", "-6", "route", "show", "default"); !strings.Contains(got, "via "+gw6) {
		t.Errorf("c4's IPv6 default route after connect:\n%s", got)
	}
	dockerOK(t, d, "exec", "c4", "ping", "-6", "-c1", "-W2", "a6")
	dockerOK(t, d, "network", "disconnect", "net6", "c4")
	if got := inspectField(t, d, "net6", `{{range .Containers}}{{.Name}} {{end}}`); strings.Contains(got, "c4") {
		t.Errorf("net6 still lists c4 after disconnect: %q", got)
	}
}

// TestE2ENetworkIPv6DefaultBridge: --ipv6 --fixed-cidr-v6 give the
// default network IPv6; the addresses survive a kill -9 of the daemon and
// are not given to new containers.
func TestE2ENetworkIPv6DefaultBridge(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--ipv6", "--fixed-cidr-v6", "fd00:5::/64"}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	if got := inspectField(t, d, "bridge", "{{.EnableIPv6}} {{(index .IPAM.Config 1).Subnet}} {{(index .IPAM.Config 1).Gateway}}"); got != "true fd00:5::/64 fd00:5::1" {
		t.Errorf("network inspect bridge: %q", got)
	}
	dockerOK(t, d, "run", "-d", "--name", "b1", "busybox", "sleep", "1d")
	a := inspectField(t, d, "b1", "{{.NetworkSettings.GlobalIPv6Address}}")
	if got := inspectField(t, d, "b1", "{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}} {{.NetworkSettings.Networks.bridge.GlobalIPv6Address}}"); got != "64 fd00:5::1 "+a {
		t.Errorf("b1's IPv6 settings: %q (address %q)", got, a)
	}
	if ip, err := netip.ParseAddr(a); err != nil || !netip.MustParsePrefix("fd00:5::/64").Contains(ip) {
		t.Fatalf("b1's IPv6 address %q", a)
	}
	dockerOK(t, d, "run", "--rm", "busybox", "ping", "-6", "-c1", "-W2", a)
	// The bridge holds the gateway address.
	h, err := netlink.Open(int(d.Netns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	br, err := h.LinkByName(d.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.Addrs(br.Index, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range addrs {
		found = found || x.Prefix == netip.MustParsePrefix("fd00:5::1/64")
	}
	if !found {
		t.Errorf("the bridge lacks fd00:5::1/64: %v", addrs)
	}

	d.Kill()
	d.Relaunch(t)
	if got := inspectField(t, d, "b1", "{{.NetworkSettings.GlobalIPv6Address}}"); got != a {
		t.Errorf("after kill -9 b1's IPv6 address is %q, want %q", got, a)
	}
	for range 3 {
		got := dockerOK(t, d, "run", "--rm", "busybox", "ip", "-o", "-6", "addr", "show", "eth0")
		if strings.Contains(got, " "+a+"/") {
			t.Fatalf("a new container got b1's address %s after the restart:\n%s", a, got)
		}
	}
	dockerOK(t, d, "run", "--rm", "busybox", "ping", "-6", "-c1", "-W2", a)
}

// ipv6Forwarding reads the daemon namespace's all.forwarding for IPv6.
func ipv6Forwarding(t *testing.T, ns *os.File) string {
	t.Helper()
	v, err := netlink.Sysctl(int(ns.Fd()), "net/ipv6/conf/all/forwarding")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// lineWith returns the first line of s containing sub, "" if none.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestE2ENetworkIPv6NAT covers the ip6 nf_tables table: masquerade of an
// IPv6 network's traffic to the outside, isolation between IPv6
// networks, internal IPv6 networks, ports published on [::1] and on
// every address of both families (reached from the outside), the rules
// surviving a kill -9, and the table gone with the last IPv6 network.
func TestE2ENetworkIPv6NAT(t *testing.T) {
	d := startNetDaemon(t)
	url, out := outside6(t, d)
	dockerOK(t, d, "network", "create", "--ipv6", "net6")
	if got := dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "wget", "-qO-", url); got != "from fd7e:18:7::1\n" {
		t.Errorf("outbound over IPv6 from net6: %q, want the daemon's address (masquerade)", got)
	}

	// Isolation: another IPv6 network cannot reach net6's containers.
	dockerOK(t, d, "network", "create", "--ipv6", "other6")
	dockerOK(t, d, "run", "-d", "--network", "net6", "--name", "web", "-p", "[::1]:8080:80", "-p", "8081:80",
		"busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	web6 := inspectField(t, d, "web", "{{.NetworkSettings.Networks.net6.GlobalIPv6Address}}")
	host := inspectField(t, d, "web", "{{.Config.Hostname}}")
	// (busybox 1.35's wget crashes with -T and an IPv6 address: ping.)
	dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "ping", "-6", "-c1", "-W2", web6)
	if res := d.Docker(t, "run", "--rm", "--network", "other6", "busybox", "ping", "-6", "-c1", "-W2", web6); res.ExitCode == 0 {
		t.Errorf("a container on other6 reached one on net6 over IPv6: %v", res)
	}
	// Internal: no way out over IPv6 either.
	dockerOK(t, d, "network", "create", "--ipv6", "--internal", "priv6")
	if res := d.Docker(t, "run", "--rm", "--network", "priv6", "busybox", "ping", "-6", "-c1", "-W2", "fd7e:18:7::2"); res.ExitCode == 0 {
		t.Errorf("a container on an internal IPv6 network reached the outside: %v", res)
	}

	if got := dockerOK(t, d, "port", "web", "80"); !strings.Contains(got, "[::1]:8080") || !strings.Contains(got, "0.0.0.0:8081") || !strings.Contains(got, "[::]:8081") {
		t.Errorf("docker port web 80 = %q, want [::1]:8080, 0.0.0.0:8081 and [::]:8081", got)
	}
	check := func(what string, ns *os.File, addr string) {
		t.Helper()
		servesHostname(t, what, ns, addr, host)
	}
	check("IPv6 loopback", d.Netns, "[::1]:8080")
	check("IPv6 host address from the outside", out, "[fd7e:18:7::1]:8081")
	check("IPv4 loopback, same port", d.Netns, "127.0.0.1:8081")
	check("IPv6 loopback of a port on ::", d.Netns, "[::1]:8081")

	d.Kill()
	d.Relaunch(t)
	check("IPv6 loopback after kill -9", d.Netns, "[::1]:8080")
	check("IPv6 host address after kill -9", out, "[fd7e:18:7::1]:8081")
	check("IPv6 loopback of a port on :: after kill -9", d.Netns, "[::1]:8081")
	if res := d.Docker(t, "run", "-d", "--network", "net6", "-p", "[::1]:8080:80", "busybox", "sleep", "1d"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "already allocated") {
		t.Errorf("after the restart, web's IPv6 port was given again: %v", res)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "net6", "busybox", "wget", "-qO-", url); got != "from fd7e:18:7::1\n" {
		t.Errorf("outbound over IPv6 after kill -9: %q", got)
	}
	dockerOK(t, d, "rm", "-f", "web")
	if _, err := getIn(t, d.Netns, "[::1]:8080", "/hostname"); err == nil {
		t.Errorf("web's IPv6 port still answers after its removal")
	}

	// The last IPv6 network takes the ip6 table with it.
	if !hasTable(t, d, netlink.FamilyIP6) {
		t.Fatalf("no ip6 table %s with IPv6 networks", d.NFTable)
	}
	removeAllContainers(t, d)
	dockerOK(t, d, "network", "rm", "net6", "other6", "priv6")
	if hasTable(t, d, netlink.FamilyIP6) {
		t.Errorf("the ip6 table %s outlives the IPv6 networks", d.NFTable)
	}
}

// hasTable reports whether the daemon's nf_tables table of family f
// exists.
func hasTable(t *testing.T, d *skifftest.Daemon, f netlink.Family) bool {
	t.Helper()
	nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	tables, err := nft.Tables(f)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(tables, f.String()+" "+d.NFTable)
}

// removeAllContainers force-removes every container of d.
func removeAllContainers(t *testing.T, d *skifftest.Daemon) {
	t.Helper()
	for _, id := range strings.Fields(dockerOK(t, d, "ps", "-aq")) {
		dockerOK(t, d, "rm", "-f", id)
	}
}

// nftRules6 lists every rule of the daemon's ip6 table.
func nftRules6(t *testing.T, d *skifftest.Daemon) []netlink.Rule {
	t.Helper()
	nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	rules, err := nft.Rules(netlink.FamilyIP6, "")
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestE2ENetworkIPv6RulesIncremental: the ip6 table changes by owner like
// the ip table (a dual-stack container's port rules come and go without
// touching the others'), and after a churn of IPv6 networks and
// containers it does what the table rebuilt at the daemon's start does.
func TestE2ENetworkIPv6RulesIncremental(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "--ipv6", "app6")
	dockerOK(t, d, "run", "-d", "--name", "keep", "--network", "app6", "-p", "9101:80", "-p", "[::1]:9102:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	id := func(kind, name string) string {
		return strings.TrimSpace(dockerOK(t, d, kind, "inspect", "--format", "{{.Id}}", name))
	}
	keep, app6 := id("container", "keep"), id("network", "app6")
	before := ruleHandles(nftRules6(t, d))
	// keep: DNAT in prerouting and output and the hairpin masquerade for
	// [::]:9101 ([::1]:9102 has its proxy and no rule); app6: masquerade.
	for tag, n := range map[string]int{"ctr:" + keep: 3, "net:" + app6: 1} {
		if len(before[tag]) != n {
			t.Errorf("ip6 rules tagged %s: %v, want %d", tag, before[tag], n)
		}
	}
	dockerOK(t, d, "run", "-d", "--name", "churn", "--network", "app6", "-p", "9103:80", "busybox", "sleep", "1d")
	dockerOK(t, d, "network", "create", "--ipv6", "other6")
	dockerOK(t, d, "rm", "-f", "churn")
	dockerOK(t, d, "network", "rm", "other6")
	after := ruleHandles(nftRules6(t, d))
	for tag, hs := range before {
		if !slices.Equal(after[tag], hs) {
			t.Errorf("ip6 rules tagged %s were %v, are %v after other owners came and went", tag, hs, after[tag])
		}
	}

	dockerOK(t, d, "network", "create", "--ipv6", "--internal", "priv6")
	for i := range 3 {
		dockerOK(t, d, "network", "create", "--ipv6", fmt.Sprintf("n%d", i))
		dockerOK(t, d, "run", "-d", "--name", fmt.Sprintf("c%d", i), "--network", fmt.Sprintf("n%d", i), "-p", "80", "busybox", "sleep", "1d")
	}
	dockerOK(t, d, "rm", "-f", "c1")
	dockerOK(t, d, "network", "rm", "n1")
	churned := ruleSet(nftRules6(t, d))
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	rebuilt := ruleSet(nftRules6(t, d))
	if onlyChurn, onlyRebuilt := diffSets(churned, rebuilt); len(onlyChurn) > 0 || len(onlyRebuilt) > 0 || len(churned) != len(rebuilt) {
		t.Errorf("ip6 table after churn (%d rules) differs from the rebuilt one (%d):\nonly after churn: %q\nonly rebuilt: %q",
			len(churned), len(rebuilt), onlyChurn, onlyRebuilt)
	}
	if got, err := getIn(t, d.Netns, "[::1]:9102", "/hostname"); err != nil || strings.TrimSpace(got) != keep[:12] {
		t.Errorf("keep's [::1] port after the restart: %q, %v", got, err)
	}
}

// TestE2ENetworkIPv6DefaultBridgeULA: --ipv6 without --fixed-cidr-v6
// gives the default network a /64 of the engine ID's unique local /48, as
// dockerd 27+ does, and keeps it across a restart.
func TestE2ENetworkIPv6DefaultBridgeULA(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--ipv6"}})
	ula := ipam.ULAPool(strings.TrimSpace(dockerOK(t, d, "info", "--format", "{{.ID}}")))
	sub := inspectField(t, d, "bridge", "{{.EnableIPv6}} {{(index .IPAM.Config 1).Subnet}}")
	p, err := netip.ParsePrefix(strings.TrimPrefix(sub, "true "))
	if err != nil || !strings.HasPrefix(sub, "true ") || p.Bits() != 64 || !ula.Base.Contains(p.Addr()) {
		t.Fatalf("network inspect bridge: %q, want IPv6 with a /64 of %s", sub, ula.Base)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	if got := inspectField(t, d, "bridge", "{{(index .IPAM.Config 1).Subnet}}"); got != p.String() {
		t.Errorf("after a restart the default network's IPv6 subnet is %q, want %s", got, p)
	}
}
