package netlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// nf_tables message types and attributes, from
// include/uapi/linux/netfilter/nf_tables.h and nfnetlink.h.
const (
	netlinkNetfilter = 12 // NETLINK_NETFILTER

	nfnlSubsysNFTables = 10
	nfnlMsgBatchBegin  = 0x10
	nfnlMsgBatchEnd    = 0x11

	nftMsgNewTable = 0
	nftMsgGetTable = 1
	nftMsgDelTable = 2
	nftMsgNewChain = 3
	nftMsgGetChain = 4
	nftMsgDelChain = 5
	nftMsgNewRule  = 6
	nftMsgGetRule  = 7
	nftMsgDelRule  = 8

	nftaTableName  = 1
	nftaTableFlags = 2

	nftaChainTable  = 1
	nftaChainHandle = 2
	nftaChainName   = 3
	nftaChainHook   = 4
	nftaChainPolicy = 5
	nftaChainType   = 7
	nftaHookHooknum = 1
	nftaHookPrio    = 2

	nftaRuleTable    = 1
	nftaRuleChain    = 2
	nftaRuleHandle   = 3
	nftaRuleExprs    = 4
	nftaRuleUserdata = 7

	nftaListElem = 1
	nftaExprName = 1
	nftaExprData = 2

	nfgenmsgLen = 4
)

// Family is an nf_tables address family (NFPROTO_*).
type Family uint8

// The families skiffd uses.
const (
	FamilyINET Family = 1  // NFPROTO_INET: IPv4 and IPv6 in one table
	FamilyIP   Family = 2  // NFPROTO_IPV4, iptables-nft's "ip" tables
	FamilyIP6  Family = 10 // NFPROTO_IPV6
)

func (f Family) String() string {
	switch f {
	case FamilyINET:
		return "inet"
	case FamilyIP:
		return "ip"
	case FamilyIP6:
		return "ip6"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Hook numbers (NF_INET_*) for base chains.
const (
	HookPrerouting  = 0
	HookInput       = 1
	HookForward     = 2
	HookOutput      = 3
	HookPostrouting = 4
)

// Chain policies (NF_DROP, NF_ACCEPT).
const (
	PolicyDrop   = 0
	PolicyAccept = 1
)

// Standard priorities, as nft names them.
const (
	PriorityDstNAT = -100 // "dstnat": prerouting and output NAT
	PriorityFilter = 0
	PrioritySrcNAT = 100 // "srcnat": postrouting NAT
)

// Hook makes a chain a base chain: attached to a netfilter hook with a
// type ("nat", "filter", "route"), a priority and a policy.
type Hook struct {
	Num      uint32
	Priority int32
	Type     string
	Policy   uint32
}

// Chain is an nf_tables chain. Hook is nil for a regular chain (a jump
// target).
type Chain struct {
	Family Family
	Table  string
	Name   string
	Handle uint64
	Hook   *Hook
}

// Rule is a rule as listed by Rules, and the handle a committed AddRule
// learns.
type Rule struct {
	Family   Family
	Table    string
	Chain    string
	Handle   uint64
	UserData []byte
	// Exprs is the rule's NFTA_RULE_EXPRS attribute as the kernel lists
	// it (not decoded): two rules with equal Exprs do the same thing,
	// which lets a test compare tables built in different ways. A rule
	// returned by AddRule leaves it nil.
	Exprs []byte
}

// NFT is an nf_tables (NETLINK_NETFILTER) socket in one network namespace
// that may only change one table: Table, skiffd's own. Every write method
// of its batches names that table and no other, so a bug cannot flush or
// edit another program's rules; reads (Chains, Rules, Tables) see every
// table.
type NFT struct {
	c     *conn
	Table string
}

// OpenNFT opens an nf_tables socket in the namespace nsfd (or Self) whose
// batches write only to table.
func OpenNFT(nsfd int, table string) (*NFT, error) {
	if table == "" || len(table) > 255 {
		return nil, fmt.Errorf("nftables: invalid table name %q", table)
	}
	c, err := openConn(netlinkNetfilter, nsfd)
	if err != nil {
		return nil, err
	}
	return &NFT{c: c, Table: table}, nil
}

// Close closes the socket. Tables, chains and rules stay in the kernel.
func (n *NFT) Close() error { return n.c.close() }

func nfgenmsg(f Family, resID uint16) []byte {
	b := []byte{uint8(f), 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], resID)
	return b
}

func nftType(msg uint16) uint16 { return nfnlSubsysNFTables<<8 | msg }

// Batch is a list of nf_tables changes committed atomically by
// NFT.Commit: all of them apply or none does.
type Batch struct {
	table string
	msgs  []batchMsg
	err   error
}

type batchMsg struct {
	op    string
	typ   uint16
	flags uint16
	body  []byte
	rule  *Rule // AddRule: filled with the handle the kernel echoes
}

// Batch starts an empty batch for n's table.
func (n *NFT) Batch() *Batch { return &Batch{table: n.Table} }

func (b *Batch) add(op string, msg uint16, flags uint16, f Family, e *encoder) {
	body := append(nfgenmsg(f, 0), e.b...)
	b.msgs = append(b.msgs, batchMsg{op: op, typ: nftType(msg), flags: flags, body: body})
}

// AddTable creates the table in family f; an existing one is left as is.
func (b *Batch) AddTable(f Family) {
	var e encoder
	e.str(nftaTableName, b.table)
	e.be32(nftaTableFlags, 0)
	b.add("add table "+f.String()+" "+b.table, nftMsgNewTable, syscall.NLM_F_CREATE, f, &e)
}

// DelTable deletes the table in family f with all its chains and rules
// (ENOENT when it does not exist).
func (b *Batch) DelTable(f Family) {
	var e encoder
	e.str(nftaTableName, b.table)
	b.add("delete table "+f.String()+" "+b.table, nftMsgDelTable, 0, f, &e)
}

// AddChain creates chain name in family f; hook nil makes a regular
// chain. An existing chain is left as is.
func (b *Batch) AddChain(f Family, name string, hook *Hook) {
	var e encoder
	e.str(nftaChainTable, b.table)
	e.str(nftaChainName, name)
	if hook != nil {
		e.begin(nftaChainHook | nlaFNested)
		e.be32(nftaHookHooknum, hook.Num)
		e.be32(nftaHookPrio, uint32(hook.Priority))
		e.end()
		e.be32(nftaChainPolicy, hook.Policy)
		e.str(nftaChainType, hook.Type)
	}
	b.add("add chain "+name, nftMsgNewChain, syscall.NLM_F_CREATE, f, &e)
}

// DelChain deletes an empty chain that no rule jumps to.
func (b *Batch) DelChain(f Family, name string) {
	var e encoder
	e.str(nftaChainTable, b.table)
	e.str(nftaChainName, name)
	b.add("delete chain "+name, nftMsgDelChain, 0, f, &e)
}

// FlushChain deletes every rule of chain name (of the batch's table only).
func (b *Batch) FlushChain(f Family, chain string) {
	var e encoder
	e.str(nftaRuleTable, b.table)
	e.str(nftaRuleChain, chain)
	b.add("flush chain "+chain, nftMsgDelRule, 0, f, &e)
}

// DelRule deletes the rule with handle h from chain.
func (b *Batch) DelRule(f Family, chain string, h uint64) {
	var e encoder
	e.str(nftaRuleTable, b.table)
	e.str(nftaRuleChain, chain)
	e.be64(nftaRuleHandle, h)
	b.add(fmt.Sprintf("delete rule %s handle %d", chain, h), nftMsgDelRule, 0, f, &e)
}

// AddRule appends a rule made of exprs to chain. userData is stored with
// the rule and listed back by Rules (tag rules with an owner ID to find
// them after a restart); it may be nil. The returned Rule gets its Handle
// when Commit succeeds.
func (b *Batch) AddRule(f Family, chain string, userData []byte, exprs ...Expr) *Rule {
	r := &Rule{Family: f, Table: b.table, Chain: chain, UserData: userData}
	var e encoder
	e.str(nftaRuleTable, b.table)
	e.str(nftaRuleChain, chain)
	e.begin(nftaRuleExprs | nlaFNested)
	for _, x := range exprs {
		e.begin(nftaListElem | nlaFNested)
		e.str(nftaExprName, x.name())
		d := encoder{}
		x.data(&d)
		if len(d.b) > 0 {
			e.attr(nftaExprData|nlaFNested, d.b)
		}
		e.end()
	}
	e.end()
	if len(userData) > 0 {
		e.attr(nftaRuleUserdata, userData)
	}
	for _, x := range exprs {
		if err := x.check(); err != nil && b.err == nil {
			b.err = fmt.Errorf("nftables: rule in %s: %w", chain, err)
		}
	}
	b.add("add rule "+chain, nftMsgNewRule, syscall.NLM_F_CREATE|syscall.NLM_F_APPEND|syscall.NLM_F_ECHO, f, &e)
	b.msgs[len(b.msgs)-1].rule = r
	return r
}

// Commit sends the batch as one nf_tables transaction and waits for the
// kernel's verdict on every message. On error nothing of the batch was
// applied; the error names the first message the kernel refused.
func (n *NFT) Commit(b *Batch) error {
	if b.err != nil {
		return b.err
	}
	if b.table != n.Table {
		return fmt.Errorf("nftables: batch for table %q committed on a handle for %q", b.table, n.Table)
	}
	if len(b.msgs) == 0 {
		return nil
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.nextSeq()
	buf := appendMsg(nil, nfnlMsgBatchBegin, syscall.NLM_F_REQUEST, first, nfgenmsg(0, nfnlSubsysNFTables))
	seqs := make(map[uint32]*batchMsg, len(b.msgs))
	for i := range b.msgs {
		m := &b.msgs[i]
		s := c.nextSeq()
		seqs[s] = m
		buf = appendMsg(buf, m.typ, m.flags|syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, s, m.body)
	}
	last := c.nextSeq()
	buf = appendMsg(buf, nfnlMsgBatchEnd, syscall.NLM_F_REQUEST, last, nfgenmsg(0, nfnlSubsysNFTables))
	if err := c.send(buf); err != nil {
		return fmt.Errorf("nftables commit: send: %w", err)
	}
	acked := 0
	for acked < len(b.msgs) {
		ms, err := c.recv()
		if err != nil {
			return fmt.Errorf("nftables commit: %w", err)
		}
		for _, m := range ms {
			if m.Seq < first || m.Seq > last {
				continue // late replies of an earlier request
			}
			bm := seqs[m.Seq]
			switch {
			case m.Type == syscall.NLMSG_ERROR:
				errno, text, err := parseError(m)
				if err != nil {
					return fmt.Errorf("nftables commit: %w", err)
				}
				op := "batch"
				if bm != nil {
					op = bm.op
				}
				if errno != 0 {
					// The transaction was aborted; the remaining
					// replies carry the older sequence numbers and
					// are skipped by later requests.
					return &Error{Op: op, Errno: errno, Msg: text}
				}
				acked++
			case m.Type == nftType(nftMsgNewRule) && bm != nil && bm.rule != nil:
				if r, err := parseRule(m.Data); err == nil {
					bm.rule.Handle = r.Handle
				}
			}
		}
	}
	return nil
}

// dump runs an nf_tables GET dump.
func (n *NFT) dump(op string, msg uint16, f Family, e *encoder) ([]message, error) {
	body := nfgenmsg(f, 0)
	if e != nil {
		body = append(body, e.b...)
	}
	return n.c.request(op, nftType(msg), syscall.NLM_F_DUMP, body)
}

// Tables lists the names of the tables of family f (0 for every family).
func (n *NFT) Tables(f Family) ([]string, error) {
	ms, err := n.dump("list tables", nftMsgGetTable, f, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if m.Type != nftType(nftMsgNewTable) || len(m.Data) < nfgenmsgLen {
			continue
		}
		as, err := attrMap(m.Data[nfgenmsgLen:])
		if err != nil {
			return nil, fmt.Errorf("nftables list tables: %w", err)
		}
		out = append(out, Family(m.Data[0]).String()+" "+cstr(as[nftaTableName]))
	}
	return out, nil
}

// Chains lists the chains of every table of family f (0 for all).
func (n *NFT) Chains(f Family) ([]Chain, error) {
	ms, err := n.dump("list chains", nftMsgGetChain, f, nil)
	if err != nil {
		return nil, err
	}
	var out []Chain
	for _, m := range ms {
		if m.Type != nftType(nftMsgNewChain) {
			continue
		}
		ch, err := parseChain(m.Data)
		if err != nil {
			return nil, fmt.Errorf("nftables list chains: %w", err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// parseChain decodes an NFT_MSG_NEWCHAIN body.
func parseChain(b []byte) (Chain, error) {
	if len(b) < nfgenmsgLen {
		return Chain{}, errShort
	}
	ch := Chain{Family: Family(b[0])}
	as, err := attrMap(b[nfgenmsgLen:])
	if err != nil {
		return ch, err
	}
	ch.Table = cstr(as[nftaChainTable])
	ch.Name = cstr(as[nftaChainName])
	ch.Handle, _ = be64(as[nftaChainHandle])
	if hk, ok := as[nftaChainHook]; ok {
		hm, err := attrMap(hk)
		if err != nil {
			return ch, err
		}
		h := &Hook{Type: cstr(as[nftaChainType]), Policy: PolicyAccept}
		h.Num, _ = be32(hm[nftaHookHooknum])
		p, _ := be32(hm[nftaHookPrio])
		h.Priority = int32(p)
		if v, ok := be32(as[nftaChainPolicy]); ok {
			h.Policy = v
		}
		ch.Hook = h
	}
	return ch, nil
}

// Rules lists the rules of chain in n's table, family f, in order; chain
// "" lists those of every chain of the table, chain by chain.
func (n *NFT) Rules(f Family, chain string) ([]Rule, error) {
	var e encoder
	e.str(nftaRuleTable, n.Table)
	if chain != "" {
		e.str(nftaRuleChain, chain)
	}
	ms, err := n.dump("list rules "+chain, nftMsgGetRule, f, &e)
	if err != nil {
		return nil, err
	}
	var out []Rule
	for _, m := range ms {
		if m.Type != nftType(nftMsgNewRule) {
			continue
		}
		r, err := parseRule(m.Data)
		if err != nil {
			return nil, fmt.Errorf("nftables list rules: %w", err)
		}
		if r.Table == n.Table && (r.Chain == chain || chain == "") {
			out = append(out, r)
		}
	}
	return out, nil
}

// parseRule decodes an NFT_MSG_NEWRULE body (expressions are not decoded).
func parseRule(b []byte) (Rule, error) {
	if len(b) < nfgenmsgLen {
		return Rule{}, errShort
	}
	r := Rule{Family: Family(b[0])}
	as, err := attrMap(b[nfgenmsgLen:])
	if err != nil {
		return r, err
	}
	r.Table = cstr(as[nftaRuleTable])
	r.Chain = cstr(as[nftaRuleChain])
	var ok bool
	if r.Handle, ok = be64(as[nftaRuleHandle]); !ok {
		return r, errors.New("rule without a handle")
	}
	if u, ok := as[nftaRuleUserdata]; ok {
		r.UserData = append([]byte(nil), u...)
	}
	if x, ok := as[nftaRuleExprs]; ok {
		r.Exprs = append([]byte(nil), x...)
	}
	return r, nil
}

// ForwardDrops lists the base chains of other tables than n's, in the ip,
// ip6 and inet families, that hook forwarding with a drop policy: such a
// chain (iptables-nft's FORWARD with policy DROP, left by another engine)
// drops traffic skiffd's accept rules let through, since a packet must be
// accepted by every base chain on the hook. The daemon reports them as a
// warning; it never changes them. It does not see iptables-legacy rules,
// which live outside nf_tables.
func (n *NFT) ForwardDrops() ([]Chain, error) {
	var out []Chain
	for _, f := range []Family{FamilyIP, FamilyIP6, FamilyINET} {
		chains, err := n.Chains(f)
		if err != nil {
			return nil, err
		}
		for _, c := range chains {
			if c.Table != n.Table && c.Hook != nil && c.Hook.Num == HookForward && c.Hook.Policy == PolicyDrop {
				out = append(out, c)
			}
		}
	}
	return out, nil
}
