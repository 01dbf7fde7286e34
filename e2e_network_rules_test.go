package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"skiffd/internal/netlink"
	"skiffd/internal/skifftest"
)

// nftRules lists every rule of the daemon's nf_tables table.
func nftRules(t *testing.T, d *skifftest.Daemon) []netlink.Rule {
	t.Helper()
	nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	rules, err := nft.Rules(netlink.FamilyIP, "")
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// ruleHandles maps each owner tag of the table to its rules' chains and
// handles, in order.
func ruleHandles(rules []netlink.Rule) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		out[string(r.UserData)] = append(out[string(r.UserData)], fmt.Sprintf("%s#%d", r.Chain, r.Handle))
	}
	return out
}

// ruleSet is the table as a sorted list of chain, owner tag and
// expressions, handles and order left out: what a table does, whatever
// built it.
func ruleSet(rules []netlink.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, fmt.Sprintf("%s %s %x", r.Chain, r.UserData, r.Exprs))
	}
	slices.Sort(out)
	return out
}

// diffSets names the entries of a missing from b and those of b missing
// from a.
func diffSets(a, b []string) (onlyA, onlyB []string) {
	for _, x := range a {
		if !slices.Contains(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return onlyA, onlyB
}

// TestE2ENetworkRulesIncremental proves that the nf_tables table changes
// by owner: starting and removing a container with published ports, and
// creating and removing a network, leave the rules of the other
// containers and networks untouched (same handles); after a churn the
// table does what a fresh rebuild at the daemon's start does; and the
// published ports still answer.
func TestE2ENetworkRulesIncremental(t *testing.T) {
	d := startNetDaemon(t)
	dockerOK(t, d, "network", "create", "app")
	dockerOK(t, d, "run", "-d", "--name", "keep", "-p", "127.0.0.1:9100:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	dockerOK(t, d, "run", "-d", "--name", "keep2", "--network", "app", "-p", "9101:80", "-p", "9102:53/udp", "busybox", "sleep", "1d")
	id := func(kind, name string) string {
		return strings.TrimSpace(dockerOK(t, d, kind, "inspect", "--format", "{{.Id}}", name))
	}
	keep, keep2 := id("container", "keep"), id("container", "keep2")
	bridge, app := id("network", "bridge"), id("network", "app")
	pair := "pair:" + min(bridge, app) + ":" + max(bridge, app)
	before := ruleHandles(nftRules(t, d))
	for tag, n := range map[string]int{"ctr:" + keep: 3, "ctr:" + keep2: 6, "net:" + bridge: 2, "net:" + app: 2, pair: 2} {
		if len(before[tag]) != n {
			t.Errorf("rules tagged %s: %v, want %d", tag, before[tag], n)
		}
	}

	dockerOK(t, d, "run", "-d", "--name", "churn", "-p", "9103:80", "busybox", "sleep", "1d")
	churn := id("container", "churn")
	if got := ruleHandles(nftRules(t, d))["ctr:"+churn]; len(got) != 3 {
		t.Errorf("rules of a started container: %v, want 3", got)
	}
	dockerOK(t, d, "network", "create", "other")
	other := id("network", "other")
	dockerOK(t, d, "network", "create", "--internal", "priv")
	// A rebuilt table would give the same rules the same handles again
	// once churn and other are gone: compare while they are there.
	mid := ruleHandles(nftRules(t, d))
	dockerOK(t, d, "rm", "-f", "churn")
	dockerOK(t, d, "network", "rm", "other", "priv")
	after := ruleHandles(nftRules(t, d))
	for tag, hs := range before {
		if !slices.Equal(mid[tag], hs) {
			t.Errorf("rules tagged %s were %v, are %v with other owners added", tag, hs, mid[tag])
		}
		if !slices.Equal(after[tag], hs) {
			t.Errorf("rules tagged %s were %v, are %v after other owners came and went", tag, hs, after[tag])
		}
	}
	if got := mid["pair:"+min(other, app)+":"+max(other, app)]; len(got) != 2 {
		t.Errorf("isolation of app and other: %v, want 2 rules", got)
	}
	for tag := range after {
		if _, ok := before[tag]; !ok {
			t.Errorf("rules tagged %s left behind: %v (churn %s, other %s)", tag, after[tag], churn[:12], other[:12])
		}
	}

	// More churn, leaving some of it: the table must equal the one the
	// daemon builds from its records at start.
	dockerOK(t, d, "network", "create", "left")
	for i := range 4 {
		dockerOK(t, d, "run", "-d", "--name", fmt.Sprintf("c%d", i), "-p", "80", "busybox", "sleep", "1d")
		dockerOK(t, d, "network", "create", fmt.Sprintf("n%d", i))
	}
	dockerOK(t, d, "run", "-d", "--name", "onleft", "--network", "left", "-p", "127.0.0.1::80", "busybox", "sleep", "1d")
	dockerOK(t, d, "rm", "-f", "c0", "c2")
	dockerOK(t, d, "network", "rm", "n1", "n3")
	dockerOK(t, d, "stop", "-t", "0", "c3")
	churned := ruleSet(nftRules(t, d))
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d.Relaunch(t)
	rebuilt := ruleSet(nftRules(t, d))
	if onlyChurn, onlyRebuilt := diffSets(churned, rebuilt); len(onlyChurn) > 0 || len(onlyRebuilt) > 0 || len(churned) != len(rebuilt) {
		t.Errorf("table after churn (%d rules) differs from the rebuilt one (%d):\nonly after churn: %q\nonly rebuilt: %q",
			len(churned), len(rebuilt), onlyChurn, onlyRebuilt)
	}
	if got, err := getIn(t, d.Netns, "127.0.0.1:9100", "/hostname"); err != nil || strings.TrimSpace(got) != keep[:12] {
		t.Errorf("published port of keep after the churn: %q, %v; want %s", got, err, keep[:12])
	}

	// A rule deleted behind the daemon's back makes the deletion by
	// handle fail: the table is rebuilt instead, without c1's rules.
	c1 := id("container", "c1")
	nft, err := netlink.OpenNFT(int(d.Netns.Fd()), d.NFTable)
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	b := nft.Batch()
	for _, r := range nftRules(t, d) {
		if string(r.UserData) == "ctr:"+c1 {
			b.DelRule(r.Family, r.Chain, r.Handle)
			break
		}
	}
	if err := nft.Commit(b); err != nil {
		t.Fatal(err)
	}
	dockerOK(t, d, "rm", "-f", "c1")
	var wantLeft []string
	for _, r := range rebuilt {
		if !strings.Contains(r, " ctr:"+c1+" ") {
			wantLeft = append(wantLeft, r)
		}
	}
	if left := ruleSet(nftRules(t, d)); !slices.Equal(left, wantLeft) {
		onlyLeft, onlyWant := diffSets(left, wantLeft)
		t.Errorf("table after removing c1, one of whose rules was gone: extra %q, missing %q", onlyLeft, onlyWant)
	}
}

// TestE2ENetworkRulesCrash kills the daemon with SIGKILL while clients
// start and remove containers with published ports and create and remove
// networks, then checks that the restarted daemon's table holds exactly
// the rules its records call for: those of each running container's
// published ports, of each network and of each pair of networks, once.
func TestE2ENetworkRulesCrash(t *testing.T) {
	d := startNetDaemon(t)
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
			d.Docker(t, "run", "-d", "--name", fmt.Sprintf("c%d", i), "-p", "80", "-p", "53/udp", "busybox", "sleep", "1d")
			d.Docker(t, "network", "create", fmt.Sprintf("n%d", i))
			if i%2 == 1 {
				d.Docker(t, "rm", "-f", fmt.Sprintf("c%d", i-1))
				d.Docker(t, "network", "rm", fmt.Sprintf("n%d", i-1))
			}
		}
	}()
	waitFor(t, "a few containers to come and go", func() bool {
		return strings.Contains(d.Docker(t, "ps", "-a", "--format", "{{.Names}}").Stdout, "c4")
	})
	d.Kill()
	close(stop)
	<-done
	d.Relaunch(t)

	want := map[string]int{}
	ports := dockerOK(t, d, "ps", "-q", "--no-trunc")
	for _, id := range strings.Fields(ports) {
		n := strings.Count(inspectField(t, d, id, "{{json .NetworkSettings.Ports}}"), "HostPort")
		if n > 0 {
			want["ctr:"+id] = 3 * n
		}
	}
	nets := strings.Fields(dockerOK(t, d, "network", "ls", "--no-trunc", "--filter", "driver=bridge", "--format", "{{.ID}}"))
	for i, a := range nets {
		want["net:"+a] = 2
		for _, b := range nets[:i] {
			want["pair:"+min(a, b)+":"+max(a, b)] = 2
		}
	}
	got := map[string]int{}
	for tag, hs := range ruleHandles(nftRules(t, d)) {
		got[tag] = len(hs)
	}
	for tag, n := range want {
		if got[tag] != n {
			t.Errorf("after the crash: %d rules tagged %s, want %d", got[tag], tag, n)
		}
	}
	for tag, n := range got {
		if _, ok := want[tag]; !ok {
			t.Errorf("after the crash: %d rules tagged %s, which nothing owns", n, tag)
		}
	}
	if len(want) < 3 {
		t.Errorf("the churn left too little to check: %v", want)
	}
}
