package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/netlink"
	"skiffd/internal/skifftest"
)

// TestE2ENetworkLegacyLinks covers --link on the default bridge as
// dockerd does it: the alias, hostname and name of the child in the
// parent's /etc/hosts, the ALIAS_* environment (ports, port ranges, name,
// the child's variables) in the process and in execs, HostConfig.Links
// in inspect, `docker rm --link` removing the link, and dockerd's errors
// for a missing or stopped child and for --network host.
func TestE2ENetworkLegacyLinks(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "run", "-d", "--name", "db", "-e", "DBV=secret", "--expose", "5432", "--expose", "7000-7001", "--expose", "53/udp",
		"busybox", "httpd", "-f", "-p", "5432", "-h", "/etc")
	ip := inspectField(t, d, "db", "{{.NetworkSettings.IPAddress}}")
	dbHost := inspectField(t, d, "db", "{{.Config.Hostname}}")

	dockerOK(t, d, "run", "-d", "--name", "web", "--link", "db:my-db", "busybox", "sleep", "1d")
	if got := inspectField(t, d, "web", "{{json .HostConfig.Links}}"); got != `["/db:/web/my-db"]` {
		t.Errorf("inspect HostConfig.Links = %s, want [\"/db:/web/my-db\"]", got)
	}

	hosts := dockerOK(t, d, "exec", "web", "cat", "/etc/hosts")
	if want := ip + "\tmy-db " + dbHost + " db\n"; !strings.Contains(hosts, want) {
		t.Errorf("/etc/hosts of web lacks %q:\n%s", want, hosts)
	}
	for _, name := range []string{"my-db", "db", dbHost} {
		if got := strings.TrimSpace(dockerOK(t, d, "exec", "web", "wget", "-qO-", "http://"+name+":5432/hostname")); got != dbHost {
			t.Errorf("web asking %s got %q, want db's hostname %q", name, got, dbHost)
		}
	}

	want := []string{
		"MY_DB_PORT=tcp://" + ip + ":5432",
		"MY_DB_PORT_5432_TCP=tcp://" + ip + ":5432",
		"MY_DB_PORT_5432_TCP_ADDR=" + ip,
		"MY_DB_PORT_5432_TCP_PORT=5432",
		"MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_7000_TCP=tcp://" + ip + ":7000",
		"MY_DB_PORT_7001_TCP_PORT=7001",
		"MY_DB_PORT_7000_TCP_START=tcp://" + ip + ":7000",
		"MY_DB_PORT_7000_TCP_PORT_START=7000",
		"MY_DB_PORT_7000_TCP_END=tcp://" + ip + ":7001",
		"MY_DB_PORT_7000_TCP_PORT_END=7001",
		"MY_DB_PORT_53_UDP=udp://" + ip + ":53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_DBV=secret",
		"MY_DB_ENV_A=1",
	}
	check := func(what, env string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(env), "\n")
		for _, w := range want {
			found := false
			for _, l := range lines {
				found = found || l == w
			}
			if !found {
				t.Errorf("%s lacks %s:\n%s", what, w, env)
			}
		}
		for _, l := range lines {
			if strings.HasPrefix(l, "MY_DB_ENV_PATH=") || strings.HasPrefix(l, "MY_DB_ENV_HOME=") {
				t.Errorf("%s has %s, which dockerd leaves out", what, l)
			}
		}
	}
	check("the environment of web's process", strings.ReplaceAll(dockerOK(t, d, "exec", "web", "cat", "/proc/1/environ"), "\x00", "\n"))
	check("the environment of an exec in web", dockerOK(t, d, "exec", "web", "env"))

	// Errors of create and start, as dockerd words them.
	if res := d.Docker(t, "run", "--rm", "--link", "nosuch:x", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "could not get container for nosuch") {
		t.Errorf("--link to a missing container: %v", res)
	}
	if res := d.Docker(t, "run", "--rm", "--network", "host", "--link", "db:x", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "conflicting options: host type networking can't be used with links") {
		t.Errorf("--link with --network host: %v", res)
	}

	// docker rm --link removes the link only.
	dockerOK(t, d, "rm", "--link", "web/my-db")
	if got := inspectField(t, d, "web", "{{json .HostConfig.Links}}"); got != "null" && got != "[]" {
		t.Errorf("inspect HostConfig.Links after rm --link = %s, want none", got)
	}
	if hosts := dockerOK(t, d, "exec", "web", "cat", "/etc/hosts"); strings.Contains(hosts, "my-db") {
		t.Errorf("/etc/hosts of web still names my-db after rm --link:\n%s", hosts)
	}
	if got := inspectField(t, d, "db", "{{.State.Running}}"); got != "true" {
		t.Errorf("db running = %s after rm --link, want true", got)
	}
	if res := d.Docker(t, "rm", "--link", "web/my-db"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "No such container") {
		t.Errorf("rm --link of a removed link: %v", res)
	}

	dockerOK(t, d, "stop", "-t", "1", "db")
	if res := d.Docker(t, "run", "--name", "late", "--link", "db:x", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Cannot link to a non running container: /db AS /late/x") {
		t.Errorf("--link to a stopped container: %v", res)
	}

	// Removing the child forgets the link: the parent restarts without it.
	dockerOK(t, d, "rm", "db")
	if got := inspectField(t, d, "late", "{{json .HostConfig.Links}}"); got != "null" && got != "[]" {
		t.Errorf("inspect HostConfig.Links of late after rm db = %s, want none", got)
	}
	dockerOK(t, d, "start", "late")
}

// TestE2ENetworkPruneUntil covers `docker network prune --filter until=`:
// only networks created before the time go, and a bad time is refused.
func TestE2ENetworkPruneUntil(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "old")
	created := func(name string) time.Time {
		t.Helper()
		ts, err := time.Parse(time.RFC3339Nano, inspectField(t, d, name, "{{.Created.Format \"2006-01-02T15:04:05.999999999Z07:00\"}}"))
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	oldT := created("old")
	dockerOK(t, d, "network", "create", "new")
	newT := created("new")
	if !newT.After(oldT) {
		t.Fatalf("network new created at %v, not after old (%v)", newT, oldT)
	}
	mid := oldT.Add(newT.Sub(oldT) / 2)
	until := fmt.Sprintf("%d.%09d", mid.Unix(), mid.Nanosecond())
	out := dockerOK(t, d, "network", "prune", "-f", "--filter", "until="+until)
	if !strings.Contains(out, "old") || strings.Contains(out, "new") {
		t.Errorf("network prune --filter until=%s printed %q, want old deleted and new kept", until, out)
	}
	ls := dockerOK(t, d, "network", "ls", "--format", "{{.Name}}")
	if strings.Contains(ls, "old") || !strings.Contains(ls, "new") {
		t.Errorf("networks after prune:\n%s", ls)
	}
	if res := d.Docker(t, "network", "prune", "-f", "--filter", "until=yesterday"); res.ExitCode == 0 || !strings.Contains(res.Stderr, `failed to parse value as time or duration: "yesterday"`) {
		t.Errorf("network prune --filter until=yesterday: %v", res)
	}
}

// TestE2ENetworkDefaultAddressPools covers --default-address-pools: the
// default bridge and a network created without a subnet get theirs from
// the given pool, in order.
func TestE2ENetworkDefaultAddressPools(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--default-address-pools", "base=10.213.0.0/16,size=24"}})
	if got := inspectField(t, d, "bridge", "{{(index .IPAM.Config 0).Subnet}}"); got != "10.213.0.0/24" {
		t.Errorf("default bridge subnet = %s, want 10.213.0.0/24 from the pool", got)
	}
	dockerOK(t, d, "network", "create", "p1")
	if got := inspectField(t, d, "p1", "{{(index .IPAM.Config 0).Subnet}}"); got != "10.213.1.0/24" {
		t.Errorf("network p1 subnet = %s, want 10.213.1.0/24 from the pool", got)
	}
	dockerOK(t, d, "network", "rm", "p1")
}

// TestE2ENetworkForwardDropWarning covers the warning of issue 14 §6:
// another table in the daemon's own namespace ("another engine") whose
// forward chain drops by policy is named, with the fix, in docker info's
// warnings after a restart; skiffd leaves that table alone.
func TestE2ENetworkForwardDropWarning(t *testing.T) {
	d := startNetDaemon(t)
	if info := dockerOK(t, d, "info", "--format", "{{json .Warnings}}"); strings.Contains(info, "drops forwarded packets") {
		t.Fatalf("warning before any dropping chain exists: %s", info)
	}
	other, err := netlink.OpenNFT(int(d.Netns.Fd()), "otherengine")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b := other.Batch()
	b.AddTable(netlink.FamilyIP)
	b.AddChain(netlink.FamilyIP, "FORWARD", &netlink.Hook{Num: netlink.HookForward, Priority: netlink.PriorityFilter, Type: "filter", Policy: netlink.PolicyDrop})
	if err := other.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	info := dockerOK(t, d, "info", "--format", "{{json .Warnings}}")
	if !strings.Contains(info, `the ip chain \"FORWARD\" of nf_tables table \"otherengine\" drops forwarded packets by policy`) || !strings.Contains(info, "set its policy to accept") {
		t.Errorf("docker info warnings lack the FORWARD drop of table otherengine: %s", info)
	}
	if !strings.Contains(d.Log(), "drops forwarded packets") {
		t.Errorf("daemon log lacks the warning")
	}
	chains, err := other.Chains(netlink.FamilyIP)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, c := range chains {
		kept = kept || (c.Table == "otherengine" && c.Name == "FORWARD" && c.Hook != nil && c.Hook.Policy == netlink.PolicyDrop)
	}
	if !kept {
		t.Errorf("the other table's FORWARD chain changed: %+v", chains)
	}
}

// TestE2ENetworkIPAMOptions covers --subnet with --ip-range and
// --gateway, and --ip: dynamic addresses come from the range, the
// default route goes through the given gateway, a static address is
// given as asked and refused when taken or on the default bridge.
func TestE2ENetworkIPAMOptions(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "--subnet", "10.77.0.0/16", "--ip-range", "10.77.5.0/24", "--gateway", "10.77.0.254", "r")
	if got := inspectField(t, d, "r", "{{range .IPAM.Config}}{{.Subnet}} {{.IPRange}} {{.Gateway}}{{end}}"); got != "10.77.0.0/16 10.77.5.0/24 10.77.0.254" {
		t.Errorf("IPAM config of r = %q", got)
	}
	dockerOK(t, d, "run", "-d", "--network", "r", "--name", "ca", "busybox", "sleep", "1d")
	ip := inspectField(t, d, "ca", "{{.NetworkSettings.Networks.r.IPAddress}}")
	if !netip.MustParsePrefix("10.77.5.0/24").Contains(netip.MustParseAddr(ip)) {
		t.Errorf("address of ca = %s, want one in the ip-range 10.77.5.0/24", ip)
	}
	if gw := inspectField(t, d, "ca", "{{.NetworkSettings.Networks.r.Gateway}}"); gw != "10.77.0.254" {
		t.Errorf("gateway of ca = %s, want 10.77.0.254", gw)
	}
	if route := dockerOK(t, d, "exec", "ca", "ip", "route"); !strings.Contains(route, "default via 10.77.0.254 dev eth0") {
		t.Errorf("routes of ca lack the default via 10.77.0.254:\n%s", route)
	}
	dockerOK(t, d, "run", "-d", "--network", "r", "--ip", "10.77.9.9", "--name", "cb", "busybox", "sleep", "1d")
	if got := inspectField(t, d, "cb", "{{.NetworkSettings.Networks.r.IPAddress}} {{.NetworkSettings.Networks.r.IPAMConfig.IPv4Address}}"); got != "10.77.9.9 10.77.9.9" {
		t.Errorf("address and IPAMConfig of cb = %q, want 10.77.9.9 twice", got)
	}
	if addr := dockerOK(t, d, "exec", "cb", "ip", "-4", "addr", "show", "eth0"); !strings.Contains(addr, "inet 10.77.9.9/16") {
		t.Errorf("eth0 of cb lacks 10.77.9.9/16:\n%s", addr)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "exec", "ca", "ping", "-c1", "-W2", "10.77.9.9")); !strings.Contains(got, "1 packets received") {
		t.Errorf("ca pinging cb at 10.77.9.9: %s", got)
	}
	if res := d.Docker(t, "run", "--rm", "--network", "r", "--ip", "10.77.9.9", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "Address already in use") {
		t.Errorf("--ip of an address in use: %v", res)
	}
	if res := d.Docker(t, "run", "--rm", "--ip", "172.17.0.50", "busybox", "true"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "user specified IP address is supported on user defined networks only") {
		t.Errorf("--ip on the default bridge: %v", res)
	}
}

// TestE2ENetworkDaemonPortReserved covers dockerd's allocateDaemonPort:
// the daemon's own TCP API address cannot be published by a container.
func TestE2ENetworkDaemonPortReserved(t *testing.T) {
	port := freePort(t)
	d := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"-H", fmt.Sprintf("tcp://127.0.0.1:%d", port)}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	res := d.Docker(t, "run", "-d", "--name", "pub", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "busybox", "sleep", "1d")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "port is already allocated") {
		t.Errorf("publishing the daemon's API port: %v", res)
	}
	if st := inspectField(t, d, "pub", "{{.State.Running}}"); st != "false" {
		t.Errorf("container pub running = %s after its port was refused", st)
	}
	dockerOK(t, d, "run", "-d", "--name", "other", "-p", fmt.Sprintf("127.0.0.1:%d:80", port+1), "busybox", "sleep", "1d")
}

// TestE2ENetworkLinksRename covers legacy links across renames, as
// dockerd's link graph keeps them: renaming the child keeps the parent's
// alias working (hosts entry, environment at its next start) and inspect
// names the child anew; renaming the parent moves its links' names
// ("/db2:/web2/alias") and what `docker rm --link` takes; both survive a
// daemon restart, and removing the renamed child forgets the link.
func TestE2ENetworkLinksRename(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "run", "-d", "--name", "db", "--expose", "5432", "busybox", "httpd", "-f", "-p", "5432", "-h", "/etc")
	dbHost := inspectField(t, d, "db", "{{.Config.Hostname}}")
	dockerOK(t, d, "run", "-d", "--name", "web", "--link", "db:alias", "busybox", "sleep", "1d")

	dockerOK(t, d, "rename", "db", "db2")
	if got := inspectField(t, d, "web", "{{json .HostConfig.Links}}"); got != `["/db2:/web/alias"]` {
		t.Errorf("inspect HostConfig.Links after renaming the child = %s, want [\"/db2:/web/alias\"]", got)
	}
	if got := strings.TrimSpace(dockerOK(t, d, "exec", "web", "wget", "-qO-", "http://alias:5432/hostname")); got != dbHost {
		t.Errorf("web asking alias after the rename got %q, want db's hostname %q", got, dbHost)
	}
	if res := d.Docker(t, "restart", "-t", "0", "web"); res.ExitCode != 0 {
		t.Fatalf("restarting the parent after renaming the child: %v", res)
	}
	ip := inspectField(t, d, "db2", "{{.NetworkSettings.IPAddress}}")
	if hosts := dockerOK(t, d, "exec", "web", "cat", "/etc/hosts"); !strings.Contains(hosts, ip+"\talias "+dbHost+" db2\n") {
		t.Errorf("/etc/hosts of the restarted parent lacks %q:\n%s", ip+"\talias "+dbHost+" db2", hosts)
	}
	env := dockerOK(t, d, "exec", "web", "env")
	for _, w := range []string{"ALIAS_NAME=/web/alias", "ALIAS_PORT=tcp://" + ip + ":5432"} {
		if !strings.Contains(env, w+"\n") {
			t.Errorf("environment of the restarted parent lacks %s:\n%s", w, env)
		}
	}

	dockerOK(t, d, "rename", "web", "web2")
	if got := inspectField(t, d, "web2", "{{json .HostConfig.Links}}"); got != `["/db2:/web2/alias"]` {
		t.Errorf("inspect HostConfig.Links after renaming the parent = %s, want [\"/db2:/web2/alias\"]", got)
	}
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	if got := inspectField(t, d, "web2", "{{json .HostConfig.Links}}"); got != `["/db2:/web2/alias"]` {
		t.Errorf("inspect HostConfig.Links after a daemon restart = %s, want [\"/db2:/web2/alias\"]", got)
	}
	dockerOK(t, d, "restart", "-t", "0", "web2")
	if env := dockerOK(t, d, "exec", "web2", "env"); !strings.Contains(env, "ALIAS_NAME=/web2/alias\n") {
		t.Errorf("environment of the renamed parent lacks ALIAS_NAME=/web2/alias:\n%s", env)
	}

	if res := d.Docker(t, "rm", "--link", "web/alias"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "No such container") {
		t.Errorf("rm --link with the parent's old name: %v", res)
	}
	dockerOK(t, d, "run", "-d", "--name", "web3", "--link", "db2:other", "busybox", "sleep", "1d")
	dockerOK(t, d, "rm", "--link", "web2/alias")
	if got := inspectField(t, d, "web2", "{{json .HostConfig.Links}}"); got != "null" && got != "[]" {
		t.Errorf("inspect HostConfig.Links after rm --link web2/alias = %s, want none", got)
	}
	dockerOK(t, d, "rename", "db2", "db3")
	dockerOK(t, d, "rm", "-f", "db3")
	if got := inspectField(t, d, "web3", "{{json .HostConfig.Links}}"); got != "null" && got != "[]" {
		t.Errorf("inspect HostConfig.Links of web3 after removing the renamed child = %s, want none", got)
	}
	dockerOK(t, d, "restart", "-t", "0", "web3")
}

// TestCLIPortsWithoutBridge: with bridge networking off, published ports
// are ignored on the host's network and none, as dockerd ignores them
// there, and refused with a reason where they would need the bridge.
func TestCLIPortsWithoutBridge(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--bridge=none"}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	if res := d.Docker(t, "run", "--rm", "-p", "18082:80", "--network", "none", "busybox", "true"); res.ExitCode != 0 {
		t.Errorf("-p with --network none: %v, want it accepted and the ports ignored", res)
	}
	res := d.Docker(t, "run", "--rm", "-p", "18082:80", "--network", "host", "busybox", "true")
	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "Published ports are discarded when using host network mode") {
		t.Errorf("-p with --network host: %v, want dockerd's warning", res)
	}
	res = d.Docker(t, "run", "--rm", "-p", "18082:80", "busybox", "true")
	if res.ExitCode != 125 || !strings.Contains(res.Stderr, "need bridge networking, which is off (--bridge=none)") {
		t.Errorf("-p on the default network with the bridge off: %v, want it refused with the reason", res)
	}
}

// TestCLIHostGateway runs containers with --add-host name:host-gateway,
// as compose files do for host.docker.internal: the name stands for the
// default bridge's gateway, from the default network and from a
// user-defined one, and reaches a server the host runs there; on the
// host's network the entry joins the host's hosts file. With the
// default bridge on IPv6 too, both gateways are entries, as in dockerd.
func TestCLIHostGateway(t *testing.T) {
	d := startNetDaemon(t)
	gw := inspectNetworkGateway(t, d, "bridge")
	serveOnHost(t, d, net.JoinHostPort(gw, "18095"), "the host answers")

	dockerOK(t, d, "network", "create", "hgnet")
	for _, nw := range []string{"bridge", "hgnet"} {
		res := d.Docker(t, "run", "--rm", "--network", nw, "--add-host", "host.docker.internal:host-gateway", "busybox",
			"sh", "-c", "grep host.docker.internal /etc/hosts; wget -qO- http://host.docker.internal:18095/")
		if want := gw + "\thost.docker.internal\nthe host answers\n"; res.ExitCode != 0 || res.Stdout != want {
			t.Errorf("on %s: %v, want %q", nw, res, want)
		}
	}
	res := d.Docker(t, "run", "--rm", "--network", "host", "--add-host", "gw.test=host-gateway", "busybox", "grep", "gw.test", "/etc/hosts")
	if want := gw + "\tgw.test\n"; res.ExitCode != 0 || res.Stdout != want {
		t.Errorf("on the host's network: %v, want %q", res, want)
	}
	// The setting is kept as given, not as resolved.
	id := strings.TrimSpace(dockerOK(t, d, "create", "--add-host", "host.docker.internal:host-gateway", "busybox", "true"))
	if got := inspectField(t, d, id, "{{json .HostConfig.ExtraHosts}}"); got != `["host.docker.internal:host-gateway"]` {
		t.Errorf("HostConfig.ExtraHosts = %s", got)
	}

	d6 := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--ipv6", "--fixed-cidr-v6", "fd00:5c1f:7::/64"}})
	importBusybox(t, d6)
	removeAllAtEnd(t, d6)
	gw4 := inspectNetworkGateway(t, d6, "bridge")
	res = d6.Docker(t, "run", "--rm", "--add-host", "host.docker.internal:host-gateway", "busybox", "grep", "host.docker.internal", "/etc/hosts")
	if want := gw4 + "\thost.docker.internal\nfd00:5c1f:7::1\thost.docker.internal\n"; res.ExitCode != 0 || res.Stdout != want {
		t.Errorf("with --ipv6: %v, want %q", res, want)
	}
}

// TestCLIHostGatewayWithoutBridge: with bridge networking off and no
// --host-gateway-ip, "host-gateway" has nothing to stand for: the
// create succeeds and the start fails with dockerd's error; with
// --host-gateway-ip it stands for that address.
func TestCLIHostGatewayWithoutBridge(t *testing.T) {
	d := skifftest.StartWith(t, skifftest.Options{Args: []string{"--bridge=none"}})
	importBusybox(t, d)
	removeAllAtEnd(t, d)
	id := strings.TrimSpace(dockerOK(t, d, "create", "--network", "none", "--add-host", "gw:host-gateway", "busybox", "true"))
	res := d.Docker(t, "start", id)
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "unable to derive the IP value for host-gateway") {
		t.Errorf("start: %v, want dockerd's error", res)
	}

	d2 := skifftest.StartWith(t, skifftest.Options{Args: []string{"--bridge=none", "--host-gateway-ip", "192.0.2.10", "--host-gateway-ip", "2001:db8::10"}})
	importBusybox(t, d2)
	removeAllAtEnd(t, d2)
	res = d2.Docker(t, "run", "--rm", "--network", "none", "--add-host", "gw:host-gateway", "busybox", "grep", "-w", "gw", "/etc/hosts")
	if want := "192.0.2.10\tgw\n2001:db8::10\tgw\n"; res.ExitCode != 0 || res.Stdout != want {
		t.Errorf("with --host-gateway-ip: %v, want %q", res, want)
	}
}

// TestCLIUserNetworksWithoutBridge: a daemon started with --bridge=none
// has no default network, as dockerd's (network ls shows host and none;
// a daemon that had one drops its record and the containers made on it
// get loopback only), and its user-defined networks work as ever: a
// container that kept running over the restart still answers on its
// published port, containers find each other by name. skiffd's nf_tables
// table exists only while there is such a network.
func TestCLIUserNetworksWithoutBridge(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "create", "--name", "old", "busybox", "sleep", "1d")
	dockerOK(t, d, "network", "create", "keep")
	dockerOK(t, d, "run", "-d", "--name", "web", "--network", "keep", "-p", "127.0.0.1:18096:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	host := inspectField(t, d, "web", "{{.Config.Hostname}}")
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.RelaunchWithArgs(t, "--bridge=none")

	if got := dockerOK(t, d, "network", "ls", "--format", "{{.Name}} {{.Driver}}"); got != "host host\nkeep bridge\nnone null\n" {
		t.Errorf("network ls = %q, want host, keep and none", got)
	}
	if res := d.Docker(t, "network", "inspect", "bridge"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "network bridge not found") {
		t.Errorf("network inspect bridge: %v, want not found", res)
	}
	dockerOK(t, d, "start", "old")
	if got := dockerOK(t, d, "exec", "old", "sh", "-c", "ls /sys/class/net"); got != "lo\n" {
		t.Errorf("interfaces of a container of the default network = %q, want lo only", got)
	}
	servesHostname(t, "published port kept over the restart", d.Netns, "127.0.0.1:18096", host)
	res := d.Docker(t, "run", "--rm", "--network", "keep", "busybox", "wget", "-qO-", "http://web/hostname")
	if res.ExitCode != 0 || strings.TrimSpace(res.Stdout) != host {
		t.Errorf("a container reaching web by name: %v, want %q", res, host)
	}
	tables := func() []string {
		t.Helper()
		nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
		if err != nil {
			t.Fatal(err)
		}
		defer nft.Close()
		ts, err := nft.Tables(0)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(ts, func(s string) bool { return !strings.HasSuffix(s, " "+d.NFTable) })
	}
	if got := tables(); !slices.Equal(got, []string{"ip " + d.NFTable}) {
		t.Errorf("nf_tables tables with a network = %q, want skiffd's", got)
	}
	dockerOK(t, d, "rm", "-f", "web")
	dockerOK(t, d, "network", "rm", "keep")
	if got := tables(); len(got) != 0 {
		t.Errorf("nf_tables tables without networks = %q, want none", got)
	}
	dockerOK(t, d, "network", "create", "again")
	if got := tables(); !slices.Equal(got, []string{"ip " + d.NFTable}) {
		t.Errorf("nf_tables tables with a new network = %q, want skiffd's", got)
	}
	dockerOK(t, d, "network", "rm", "again")
}

// serveOnHost runs an HTTP server answering reply on addr in the
// daemon's network namespace (its "host"), until the test ends.
func serveOnHost(t *testing.T, d *skifftest.Daemon, addr, reply string) {
	t.Helper()
	var ln net.Listener
	if err := netlink.Do(int(d.Netns.Fd()), func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, reply) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// inspectNetworkGateway is the first IPAM gateway of a network.
func inspectNetworkGateway(t *testing.T, d *skifftest.Daemon, name string) string {
	t.Helper()
	res := d.Docker(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", name)
	gw := strings.TrimSpace(res.Stdout)
	if res.ExitCode != 0 || gw == "" {
		t.Fatalf("network inspect %s: %v", name, res)
	}
	return gw
}

// TestCLINetworkScopedLinks: --link on a user-defined network (and
// docker network connect --link) is an alias the embedded DNS answers for
// the linking container only, as libnetwork's endpoint aliases do; the
// target may start after the link is made, and the alias hides a
// container of that name.
func TestCLINetworkScopedLinks(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "lnet")
	dockerOK(t, d, "run", "-d", "--name", "client", "--network", "lnet", "--link", "upstream:db", "busybox", "sleep", "600")
	dockerOK(t, d, "run", "-d", "--name", "upstream", "--network", "lnet", "busybox", "sleep", "600")
	dockerOK(t, d, "run", "-d", "--name", "db", "--network", "lnet", "busybox", "sleep", "600")
	upIP := inspectField(t, d, "upstream", "{{.NetworkSettings.Networks.lnet.IPAddress}}")
	dbIP := inspectField(t, d, "db", "{{.NetworkSettings.Networks.lnet.IPAddress}}")
	resolve := func(ctr, name string) string {
		res := d.Docker(t, "exec", ctr, "nslookup", name)
		for _, line := range strings.Split(res.Stdout, "\n") {
			if a, ok := strings.CutPrefix(line, "Address: "); ok {
				return strings.TrimSpace(a)
			}
		}
		return "none: " + res.Stdout + res.Stderr
	}
	if got := resolve("client", "db"); got != upIP {
		t.Errorf("db from the linking container = %s, want the link's target %s", got, upIP)
	}
	if got := resolve("upstream", "db"); got != dbIP {
		t.Errorf("db from another container = %s, want the container named db %s", got, dbIP)
	}
	if got := inspectField(t, d, "client", "{{json .NetworkSettings.Networks.lnet.Links}} {{json .HostConfig.Links}}"); got != `["upstream:db"] null` {
		t.Errorf("the link in inspect: %s", got)
	}
	dockerOK(t, d, "run", "-d", "--name", "late", "--network", "lnet", "busybox", "sleep", "600")
	dockerOK(t, d, "network", "disconnect", "lnet", "late")
	dockerOK(t, d, "network", "connect", "--link", "upstream:up", "lnet", "late")
	if got := resolve("late", "up"); got != upIP {
		t.Errorf("up after network connect --link = %s, want %s", got, upIP)
	}
}

// TestCLINetworkConnectRules follows dockerd's rules for docker network
// connect and disconnect with the host's network and none: a container on
// none joins no other network until it leaves none, then gets its
// interface (and keeps it across a restart); one on the host's network
// cannot leave it nor join another; a container sharing another's
// namespace joins none. Each refusal is dockerd's 400 and its text.
func TestCLINetworkConnectRules(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "rnet")
	dockerOK(t, d, "run", "-d", "--name", "quiet", "--network", "none", "busybox", "sleep", "600")
	refused := func(want string, args ...string) {
		t.Helper()
		res := d.Docker(t, args...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "Error response from daemon: "+want) {
			t.Errorf("docker %s: %v, want %q", strings.Join(args, " "), res, want)
		}
	}
	refused("container cannot be connected to multiple networks with one of the networks in private (none) mode", "network", "connect", "rnet", "quiet")
	dockerOK(t, d, "network", "disconnect", "none", "quiet")
	dockerOK(t, d, "network", "connect", "rnet", "quiet")
	ip := inspectField(t, d, "quiet", "{{.NetworkSettings.Networks.rnet.IPAddress}}")
	if out := dockerOK(t, d, "exec", "quiet", "ip", "-4", "addr", "show", "eth0"); ip == "" || !strings.Contains(out, "inet "+ip+"/") {
		t.Errorf("after leaving none and joining rnet: eth0 %q, want %s", out, ip)
	}
	if got := inspectField(t, d, "quiet", "{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Networks}}"); got != "none 1" {
		t.Errorf("NetworkMode and networks = %q, want none and rnet alone", got)
	}
	dockerOK(t, d, "restart", "-t", "0", "quiet")
	ip = inspectField(t, d, "quiet", "{{.NetworkSettings.Networks.rnet.IPAddress}}")
	if out := dockerOK(t, d, "exec", "quiet", "ip", "-4", "addr", "show", "eth0"); ip == "" || !strings.Contains(out, "inet "+ip+"/") {
		t.Errorf("after a restart: eth0 %q, want %s", out, ip)
	}

	dockerOK(t, d, "run", "-d", "--name", "hosted", "--network", "host", "busybox", "sleep", "600")
	refused("cannot disconnect container from host network - container was created in host network mode", "network", "disconnect", "host", "hosted")
	refused("container sharing network namespace with another container or host cannot be connected to any other network", "network", "connect", "rnet", "hosted")
	refused("container sharing network namespace with another container or host cannot be connected to any other network", "network", "connect", "host", "quiet")
	dockerOK(t, d, "run", "-d", "--name", "sidecar", "--network", "container:quiet", "busybox", "sleep", "600")
	refused("container sharing network namespace with another container or host cannot be connected to any other network", "network", "connect", "rnet", "sidecar")
	r := d.Do(t, "POST", "/networks/rnet/connect", strings.NewReader(`{"Container":"hosted"}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusBadRequest {
		t.Errorf("connect of a host-network container: %d %s, want dockerd's 400", r.Status, r.Body)
	}
}

// TestCLINetworkICCAndMasquerade: dockerd's bridge driver options that
// take something away are honoured, not ignored: with enable_icc=false
// the network's containers cannot reach each other (isolated bridge
// ports) yet reach the host and are reached through published ports;
// with enable_ip_masquerade=false their outbound traffic leaves with
// their own addresses. A value that is not a boolean is dockerd's 400.
// The daemon's --icc=false does the same to the default network.
func TestCLINetworkICCAndMasquerade(t *testing.T) {
	d := startNetDaemon(t)
	url, out := outsideAt(t, d, "skto1", netip.MustParsePrefix("198.18.9.1/24"), netip.MustParsePrefix("198.18.9.2/24"))
	dockerOK(t, d, "network", "create", "--subnet", "10.99.0.0/24", "-o", "com.docker.network.bridge.enable_icc=false", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "walled")
	dockerOK(t, d, "run", "-d", "--name", "srv", "--network", "walled", "-p", "127.0.0.1:18096:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	srvIP := inspectField(t, d, "srv", "{{.NetworkSettings.Networks.walled.IPAddress}}")
	gw := inspectField(t, d, "srv", "{{.NetworkSettings.Networks.walled.Gateway}}")
	serveOnHost(t, d, net.JoinHostPort(gw, "18097"), "host")

	res := d.Docker(t, "run", "--rm", "--network", "walled", "busybox", "sh", "-c",
		"wget -qO- http://"+net.JoinHostPort(gw, "18097")+"/; if timeout 2 wget -qO- http://"+srvIP+"/hostname >/dev/null 2>&1; then echo reached; else echo walled; fi")
	if res.ExitCode != 0 || res.Stdout != "host\nwalled\n" {
		t.Errorf("from a container on an enable_icc=false network: %v, want the host reached and its neighbour not", res)
	}
	// Through the host, a published port still answers.
	if err := netlink.Do(int(d.Netns.Fd()), func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:18096", 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Errorf("published port of a container on the walled network: %v", err)
	}

	// No masquerade: the outside answers only once it has a route back,
	// and sees the container's own address.
	oh, err := netlink.Open(int(out.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	eth0, err := oh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := oh.AddRoute(netlink.Route{Dst: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("198.18.9.1"), LinkIndex: eth0.Index}); err != nil {
		t.Fatal(err)
	}
	res = d.Docker(t, "run", "--rm", "--network", "walled", "--ip", "10.99.0.50", "busybox", "wget", "-qO-", url)
	if res.ExitCode != 0 || res.Stdout != "from 10.99.0.50\n" {
		t.Errorf("outbound from an enable_ip_masquerade=false network: %v, want the container's own address", res)
	}

	r := d.Do(t, "POST", "/networks/create", strings.NewReader(`{"Name":"bad","Options":{"com.docker.network.bridge.enable_icc":"maybe"}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "failed to parse com.docker.network.bridge.enable_icc value: maybe") {
		t.Errorf("enable_icc=maybe: %d %s, want dockerd's 400", r.Status, r.Body)
	}

	d2 := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--icc=false"}})
	importBusybox(t, d2)
	removeAllAtEnd(t, d2)
	dockerOK(t, d2, "run", "-d", "--name", "srv", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	ip := inspectField(t, d2, "srv", "{{.NetworkSettings.IPAddress}}")
	if got := inspectField(t, d2, "srv", `{{(index .NetworkSettings.Networks "bridge").NetworkID}}`); got == "" {
		t.Fatal("no default network endpoint")
	}
	res = d2.Docker(t, "run", "--rm", "busybox", "sh", "-c", "if timeout 2 wget -qO- http://"+ip+"/hostname >/dev/null 2>&1; then echo reached; else echo walled; fi")
	if res.Stdout != "walled\n" {
		t.Errorf("default network with --icc=false: %v, want the neighbour unreachable", res)
	}
	if got := strings.TrimSpace(dockerOK(t, d2, "network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.enable_icc"}}`, "bridge")); got != "false" {
		t.Errorf("the default network's enable_icc option = %q, want false", got)
	}
}

// TestCLIPublishDefaultHostIP: a port published without a host address
// goes where the network's host_binding_ipv4 (or the daemon's --ip) says,
// as dockerd's bridge driver has it: 127.0.0.1 keeps it off every other
// address of the host.
func TestCLIPublishDefaultHostIP(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "local")
	dockerOK(t, d, "run", "-d", "--name", "web", "--network", "local", "-p", "18098:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	if got := inspectField(t, d, "web", `{{json .NetworkSettings.Ports}}`); got != `{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18098"}]}` {
		t.Errorf("Ports = %s, want 127.0.0.1 only", got)
	}
	gw := inspectField(t, d, "web", "{{.NetworkSettings.Networks.local.Gateway}}")
	dialIn := func(addr string) error {
		return netlink.Do(int(d.Netns.Fd()), func() error {
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dialIn("127.0.0.1:18098"); err != nil {
		t.Errorf("the port on 127.0.0.1: %v", err)
	}
	if err := dialIn(net.JoinHostPort(gw, "18098")); err == nil {
		t.Errorf("the port answered on %s, another address of the host", gw)
	}
	r := d.Do(t, "POST", "/networks/create", strings.NewReader(`{"Name":"bad","Options":{"com.docker.network.bridge.host_binding_ipv4":"localhost"}}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusBadRequest {
		t.Errorf("host_binding_ipv4=localhost: %d %s, want 400", r.Status, r.Body)
	}
	// Options skiffd does not carry out are refused, naming them.
	for _, o := range []string{"com.docker.network.bridge.gateway_mode_ipv4=routed", "com.docker.network.bridge.inhibit_ipv4=true"} {
		res := d.Docker(t, "network", "create", "-o", o, "nope")
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "skiffd does not support "+o) {
			t.Errorf("network create -o %s: %v, want a refusal naming it", o, res)
		}
	}

	d2 := skifftest.StartWith(t, skifftest.Options{OwnNetns: true, Args: []string{"--ip", "127.0.0.1"}})
	importBusybox(t, d2)
	removeAllAtEnd(t, d2)
	dockerOK(t, d2, "run", "-d", "--name", "web", "-p", "18099:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	if got := inspectField(t, d2, "web", `{{json .NetworkSettings.Ports}}`); got != `{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18099"}]}` {
		t.Errorf("with --ip 127.0.0.1: Ports = %s", got)
	}
}

// TestCLINetworkDisabled: Config.NetworkDisabled (docker-py's
// network_disabled) joins no network, as in dockerd: the container has a
// network namespace of its own with its loopback interface alone, across
// a restart too.
func TestCLINetworkDisabled(t *testing.T) {
	d := startNetDaemon(t)
	r := d.Do(t, "POST", "/containers/create?name=offline", strings.NewReader(`{"Image":"busybox","Cmd":["sh","-c","ls /sys/class/net; sleep 600"],"NetworkDisabled":true}`), http.Header{"Content-Type": {"application/json"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	dockerOK(t, d, "start", "offline")
	for i := 0; i < 2; i++ {
		if out := dockerOK(t, d, "exec", "offline", "ls", "/sys/class/net"); out != "lo\n" {
			t.Errorf("interfaces of a container with NetworkDisabled: %q, want lo alone", out)
		}
		if got := inspectField(t, d, "offline", "{{len .NetworkSettings.Networks}} {{.Config.NetworkDisabled}}"); got != "0 true" {
			t.Errorf("networks, NetworkDisabled = %s", got)
		}
		dockerOK(t, d, "restart", "-t", "0", "offline")
	}
	if n := len(bridgeMembers(t, d)); n != 0 {
		t.Errorf("%d ports on the default bridge, want none", n)
	}
}

// TestCLINetworkMacvlan covers the macvlan driver as dockerd's: the
// containers are on the parent's LAN themselves (the LAN sees their own
// addresses, not the host's, and reaches them directly), find each other
// by name, get a default route only through a gateway the user names,
// keep working over a kill -9 of the daemon; a network without a parent
// gets an interface of its own, gone with it; dockerd's refusals.
func TestCLINetworkMacvlan(t *testing.T) {
	d := startNetDaemon(t)
	url, lan := outsideAt(t, d, "skmv0", netip.MustParsePrefix("198.18.9.1/24"), netip.MustParsePrefix("198.18.9.2/24"))
	// The addresses of the containers from the upper half: the lower one
	// has the LAN's hosts (the daemon's, 198.18.9.1, and the router).
	dockerOK(t, d, "network", "create", "-d", "macvlan", "--subnet", "198.18.9.0/24", "--ip-range", "198.18.9.128/25", "--gateway", "198.18.9.2", "-o", "parent=skmv0", "lan")
	if got := dockerOK(t, d, "network", "inspect", "-f", "{{.Driver}} {{.Options}} {{json .IPAM.Config}}", "lan"); got != `macvlan map[parent:skmv0] [{"Subnet":"198.18.9.0/24","IPRange":"198.18.9.128/25","Gateway":"198.18.9.2"}]`+"\n" {
		t.Errorf("network inspect = %q", got)
	}
	dockerOK(t, d, "run", "-d", "--name", "web", "--network", "lan", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	webIP := inspectField(t, d, "web", "{{.NetworkSettings.Networks.lan.IPAddress}}")
	host := inspectField(t, d, "web", "{{.Config.Hostname}}")
	servesHostname(t, "the LAN reaching a container", lan, webIP+":80", host)
	res := d.Docker(t, "run", "--rm", "--network", "lan", "busybox", "sh", "-c", "wget -qO- "+url+"; wget -qO- http://web/hostname; ip -o -4 addr show eth0")
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if res.ExitCode != 0 || len(lines) != 3 || lines[1] != host || !strings.Contains(lines[2], "inet "+strings.TrimPrefix(lines[0], "from ")+"/24") || lines[0] == "from 198.18.9.1" {
		t.Errorf("from a container on the LAN: %v; want the LAN to see its own address, and web by name", res)
	}
	if got := dockerOK(t, d, "run", "--rm", "--network", "lan", "busybox", "ip", "route"); !strings.Contains(got, "default via 198.18.9.2 dev eth0") {
		t.Errorf("routes with a gateway: %q", got)
	}

	dockerOK(t, d, "network", "create", "-d", "macvlan", "--subnet", "198.18.10.0/24", "-o", "parent=skmv0", "nogw")
	if got := dockerOK(t, d, "run", "--rm", "--network", "nogw", "busybox", "ip", "route"); strings.Contains(got, "default") {
		t.Errorf("routes without a gateway: %q, want no default route", got)
	}
	if got := inspectField(t, d, "nogw", `{{json .IPAM.Config}}`); got != `[{"Subnet":"198.18.10.0/24"}]` {
		t.Errorf("IPAM of a network without a gateway = %s", got)
	}

	// A parent that is missing when the daemon starts fails the starts
	// of its network's containers with the reason, until it is back.
	dh, err := netlink.Open(int(d.Netns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer dh.Close()
	addParent := func() {
		t.Helper()
		if _, err := dh.AddVeth(netlink.Veth{Name: "skmv1", PeerName: "skmv1p", PeerNS: netlink.Self, Up: true}); err != nil {
			t.Fatal(err)
		}
	}
	addParent()
	dockerOK(t, d, "network", "create", "-d", "macvlan", "-o", "parent=skmv1", "gone")
	d.Kill()
	l, err := dh.LinkByName("skmv1")
	if err != nil {
		t.Fatal(err)
	}
	if err := dh.DeleteLink(l.Index); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	servesHostname(t, "after the daemon's kill -9", lan, webIP+":80", host)
	res = d.Docker(t, "run", "--rm", "--network", "gone", "busybox", "true")
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "the requested parent interface skmv1 was not found") {
		t.Errorf("a container on a network whose parent is missing: %v, want the start refused with the reason", res)
	}
	addParent() // in the daemon's namespace, which goes with the test
	dockerOK(t, d, "run", "--rm", "--network", "gone", "busybox", "true")
	dockerOK(t, d, "network", "rm", "gone")
	if out := dockerOK(t, d, "run", "--rm", "--network", "lan", "busybox", "wget", "-qO-", "http://web/hostname"); strings.TrimSpace(out) != host {
		t.Errorf("a new container after the restart reaching web: %q", out)
	}

	id := strings.TrimSpace(dockerOK(t, d, "network", "create", "-d", "macvlan", "solo"))
	if _, err := dh.LinkByName("dm-" + id[:12]); err != nil {
		t.Errorf("the parent of a network without one: %v", err)
	}
	if out := dockerOK(t, d, "run", "--rm", "--network", "solo", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(out, "inet ") {
		t.Errorf("a container on a network without a parent: %q", out)
	}
	dockerOK(t, d, "network", "rm", "solo")
	if _, err := dh.LinkByName("dm-" + id[:12]); !netlink.IsNotFound(err) {
		t.Errorf("the network's own parent after its removal: %v, want it gone", err)
	}
	if _, err := dh.LinkByName("skmv0"); err != nil {
		t.Errorf("a parent of the host's after its networks' removal: %v, want it kept", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "parent=lo"}, "loopback interface is not a valid macvlan parent link"},
		{[]string{"-o", "parent=skmv0", "-o", "macvlan_mode=odd"}, "requested macvlan mode 'odd' is not valid"},
		{[]string{"-o", "parent=skmv0", "-o", "macvlan_mode=passthru"}, "is already using parent interface skmv0"},
		{[]string{"-o", "parent=nosuch"}, "invalid subinterface vlan name nosuch, example formatting is eth0.10"},
	} {
		res := d.Docker(t, append(append([]string{"network", "create", "-d", "macvlan"}, tc.args...), "bad")...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("network create %q: %v, want %q", tc.args, res, tc.want)
		}
	}
	dockerOK(t, d, "rm", "-f", "web")
	dockerOK(t, d, "network", "rm", "lan", "nogw")
}
