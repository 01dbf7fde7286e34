// Package netlink speaks the two netlink families skiffd's networking
// needs, with the standard library alone: rtnetlink (NETLINK_ROUTE) for
// links, addresses and routes, and nf_tables (NETLINK_NETFILTER) for NAT
// and filter rules in skiffd's own table (issue 14). It is mechanism only:
// which bridge, which addresses, which rules is the caller's business.
//
// # Namespaces
//
// A netlink socket acts on the network namespace it was created in, for
// its whole life. Open and OpenNFT therefore create their socket on a
// throw-away OS thread that joined the namespace (setns on a locked thread
// that is never unlocked, so the runtime discards it); the returned Handle
// or NFT can then be used from any goroutine. Do runs any function that
// way (creating a listening socket inside a container, say), and Sysctl
// and SetSysctl read and write /proc/sys/net from inside a namespace.
// NewNetns makes a fresh namespace, which tests use as a private "host".
//
// # Wiring a container
//
//	host, _ := netlink.Open(netlink.Self)            // the daemon's namespace
//	br, _ := host.AddBridge("skiff0", 1500)
//	host.AddAddr(br.Index, netip.MustParsePrefix("172.18.0.1/16"))
//	host.SetUp(br.Index)
//
//	nsfd := ... // open /proc/<container pid>/ns/net
//	veth, _ := host.AddVeth(netlink.Veth{
//		Name: "skv1a2b3c", PeerName: "eth0", PeerNS: nsfd,
//		MasterIndex: br.Index, Up: true, PeerHardwareAddr: mac,
//	})
//	ctr, _ := netlink.Open(nsfd)
//	defer ctr.Close()
//	eth0, _ := ctr.LinkByName("eth0")
//	ctr.AddAddr(eth0.Index, netip.MustParsePrefix("172.18.0.2/16"))
//	ctr.SetUp(eth0.Index)
//	ctr.SetUp(1) // lo
//	ctr.AddDefaultRoute(netip.MustParseAddr("172.18.0.1"), eth0.Index)
//
//	l, _ := ctr.LinkByName("eth0")
//	_ = l.Stats.RxBytes         // docker stats "networks"
//	host.DeleteLink(veth.Index) // removes both ends (slow: ~20 ms of RCU waits)
//
// # Rules
//
// An NFT writes to one table only, named when it is opened; its batches
// cannot name another, so skiffd never flushes or edits other programs'
// rules. Reading is allowed everywhere: ForwardDrops finds other tables
// whose forward hook would drop bridged traffic, for a warning.
//
//	nft, _ := netlink.OpenNFT(netlink.Self, "skiffd")
//	b := nft.Batch()
//	b.AddTable(netlink.FamilyIP)
//	b.AddChain(netlink.FamilyIP, "postrouting", &netlink.Hook{
//		Num: netlink.HookPostrouting, Priority: netlink.PrioritySrcNAT,
//		Type: "nat", Policy: netlink.PolicyAccept})
//	b.AddChain(netlink.FamilyIP, "prerouting", &netlink.Hook{
//		Num: netlink.HookPrerouting, Priority: netlink.PriorityDstNAT,
//		Type: "nat", Policy: netlink.PolicyAccept})
//	// Outbound NAT: the subnet leaving by any interface but its bridge.
//	b.AddRule(netlink.FamilyIP, "postrouting", []byte("net:abc"), netlink.R(
//		netlink.SrcNet(subnet, netlink.CmpEq),
//		netlink.Oifname("skiff0", netlink.CmpNeq),
//		[]netlink.Expr{netlink.Masquerade()})...)
//	// A published port: -p 8080:80.
//	pub := b.AddRule(netlink.FamilyIP, "prerouting", []byte("ctr:123"), netlink.R(
//		netlink.DstLocal(), netlink.DstPort(netlink.ProtoTCP, 8080),
//		netlink.DNAT(netip.MustParseAddrPort("172.18.0.2:80")))...)
//	err := nft.Commit(b) // atomic; pub.Handle is now set
//	...
//	b = nft.Batch()
//	b.DelRule(netlink.FamilyIP, "prerouting", pub.Handle)
//	err = nft.Commit(b)
//
// The same prerouting rule in an output chain (hook output, priority
// dstnat) serves connections from the host itself; for 127.0.0.1 the
// bridge also needs net/ipv4/conf/<bridge>/route_localnet=1 and a
// postrouting masquerade of 127.0.0.0/8 sources leaving by the bridge.
// Rules carry user data, listed back by Rules, so a restarted daemon can
// find the rules of each container and network.
//
// # Errors
//
// Kernel refusals are *Error values carrying the errno and, when the
// kernel gives one, its extended-ACK text; errors.Is(err, syscall.EEXIST)
// works, and IsExist and IsNotFound cover the usual cases. Replies are
// parsed defensively (fuzzed): a malformed reply is an error, never a
// panic.
package netlink
