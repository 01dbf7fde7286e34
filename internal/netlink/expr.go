package netlink

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Expr is one nf_tables expression of a rule. The types below are the
// kernel's expressions one to one; the functions after them (SrcNet,
// DstPort, DNAT...) build the usual matches and actions out of them.
type Expr interface {
	name() string
	data(*encoder)
	check() error
}

// Registers. Reg1..Reg4 are the 16-byte data registers; RegVerdict holds
// an Immediate's verdict.
const (
	RegVerdict = 0
	Reg1       = 1
	Reg2       = 2
	Reg3       = 3
	Reg4       = 4
)

// Payload bases.
const (
	PayloadLinkLayer = 0
	PayloadNetwork   = 1
	PayloadTransport = 2
)

// Payload loads Len bytes at Offset from header Base into DReg.
type Payload struct {
	Base, Offset, Len uint32
	DReg              uint32
}

func (Payload) name() string { return "payload" }
func (x Payload) data(e *encoder) {
	e.be32(1, x.DReg)
	e.be32(2, x.Base)
	e.be32(3, x.Offset)
	e.be32(4, x.Len)
}
func (x Payload) check() error {
	if x.Len == 0 || x.Len > 16 {
		return fmt.Errorf("payload length %d", x.Len)
	}
	return nil
}

// CmpOp is a comparison operator of Cmp.
type CmpOp uint32

// Comparison operators.
const (
	CmpEq CmpOp = iota
	CmpNeq
	CmpLt
	CmpLte
	CmpGt
	CmpGte
)

// Cmp compares SReg with Data and ends the rule when false.
type Cmp struct {
	Op   CmpOp
	SReg uint32
	Data []byte
}

func (Cmp) name() string { return "cmp" }
func (x Cmp) data(e *encoder) {
	e.be32(1, x.SReg)
	e.be32(2, uint32(x.Op))
	e.begin(3 | nlaFNested)
	e.attr(1, x.Data) // NFTA_DATA_VALUE
	e.end()
}
func (x Cmp) check() error {
	if len(x.Data) == 0 || len(x.Data) > 16 {
		return fmt.Errorf("cmp data of %d bytes", len(x.Data))
	}
	return nil
}

// Bitwise computes DReg = (SReg & Mask) ^ Xor over Len bytes.
type Bitwise struct {
	SReg, DReg uint32
	Mask, Xor  []byte
}

func (Bitwise) name() string { return "bitwise" }
func (x Bitwise) data(e *encoder) {
	e.be32(1, x.SReg)
	e.be32(2, x.DReg)
	e.be32(3, uint32(len(x.Mask)))
	e.begin(4 | nlaFNested)
	e.attr(1, x.Mask)
	e.end()
	xor := x.Xor
	if xor == nil {
		xor = make([]byte, len(x.Mask))
	}
	e.begin(5 | nlaFNested)
	e.attr(1, xor)
	e.end()
}
func (x Bitwise) check() error {
	if len(x.Mask) == 0 || len(x.Mask) > 16 || (x.Xor != nil && len(x.Xor) != len(x.Mask)) {
		return fmt.Errorf("bitwise mask %d / xor %d bytes", len(x.Mask), len(x.Xor))
	}
	return nil
}

// Meta keys.
const (
	MetaIifname = 6
	MetaOifname = 7
	MetaNFProto = 15
	MetaL4Proto = 16
)

// Meta loads packet metadata Key into DReg.
type Meta struct {
	Key  uint32
	DReg uint32
}

func (Meta) name() string { return "meta" }
func (x Meta) data(e *encoder) {
	e.be32(1, x.DReg)
	e.be32(2, x.Key)
}
func (Meta) check() error { return nil }

// Conntrack state bits loaded by Ct{Key: CtKeyState}, host byte order.
const (
	CtKeyState       = 0
	CtStateInvalid   = 1
	CtStateEstab     = 2
	CtStateRelated   = 4
	CtStateNew       = 8
	CtStateUntracked = 64
)

// Ct loads conntrack Key into DReg.
type Ct struct {
	Key  uint32
	DReg uint32
}

func (Ct) name() string { return "ct" }
func (x Ct) data(e *encoder) {
	e.be32(1, x.DReg)
	e.be32(2, x.Key)
}
func (Ct) check() error { return nil }

// Verdict codes of an Immediate verdict.
const (
	VerdictDrop   = 0
	VerdictAccept = 1
	VerdictJump   = -3
	VerdictGoto   = -4
	VerdictReturn = -5
)

// Immediate loads Data into DReg, or, with DReg RegVerdict, issues the
// verdict Verdict (jumping to Chain for VerdictJump and VerdictGoto).
type Immediate struct {
	DReg    uint32
	Data    []byte
	Verdict int32
	Chain   string
}

func (Immediate) name() string { return "immediate" }
func (x Immediate) data(e *encoder) {
	e.be32(1, x.DReg)
	e.begin(2 | nlaFNested)
	if x.DReg == RegVerdict {
		e.begin(2 | nlaFNested) // NFTA_DATA_VERDICT
		e.be32(1, uint32(x.Verdict))
		if x.Chain != "" {
			e.str(2, x.Chain)
		}
		e.end()
	} else {
		e.attr(1, x.Data)
	}
	e.end()
}
func (x Immediate) check() error {
	if x.DReg != RegVerdict && (len(x.Data) == 0 || len(x.Data) > 16) {
		return fmt.Errorf("immediate data of %d bytes", len(x.Data))
	}
	if (x.Verdict == VerdictJump || x.Verdict == VerdictGoto) && x.Chain == "" {
		return fmt.Errorf("jump without a chain")
	}
	return nil
}

// Counter counts the packets and bytes that reach it.
type Counter struct{}

func (Counter) name() string { return "counter" }
func (Counter) data(e *encoder) {
	e.be64(1, 0)
	e.be64(2, 0)
}
func (Counter) check() error { return nil }

// Masq rewrites the source address to the outgoing interface's.
type Masq struct{}

func (Masq) name() string  { return "masq" }
func (Masq) data(*encoder) {}
func (Masq) check() error  { return nil }

// NAT types.
const (
	NATSource = 0
	NATDest   = 1
)

// NAT rewrites the source or destination to the address in RegAddr and,
// when RegProto is not 0, the port in RegProto (both loaded before by
// Immediate). Family is the address family (FamilyIP or FamilyIP6).
type NAT struct {
	Type     uint32
	Family   Family
	RegAddr  uint32
	RegProto uint32
}

func (NAT) name() string { return "nat" }
func (x NAT) data(e *encoder) {
	e.be32(1, x.Type)
	e.be32(2, uint32(x.Family))
	if x.RegAddr != 0 {
		e.be32(3, x.RegAddr)
		e.be32(4, x.RegAddr)
	}
	if x.RegProto != 0 {
		e.be32(5, x.RegProto)
		e.be32(6, x.RegProto)
	}
}
func (NAT) check() error { return nil }

// Fib flags and results.
const (
	FibFlagSaddr    = 1
	FibFlagDaddr    = 2
	FibResultOif    = 1
	FibResultAddrTy = 3
	rtnLocal        = 2 // RTN_LOCAL
)

// Fib looks the packet up in the routing tables and loads Result into DReg.
type Fib struct {
	Flags  uint32
	Result uint32
	DReg   uint32
}

func (Fib) name() string { return "fib" }
func (x Fib) data(e *encoder) {
	e.be32(1, x.DReg)
	e.be32(2, x.Result)
	e.be32(3, x.Flags)
}
func (Fib) check() error { return nil }

// Matches and actions built from the expressions above.

func nfproto(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIP
	}
	return FamilyIP6
}

func netMatch(p netip.Prefix, op CmpOp, src bool) []Expr {
	p = p.Masked()
	a := p.Addr()
	off := uint32(16) // IPv4 daddr
	switch {
	case a.Is4() && src:
		off = 12
	case a.Is6() && src:
		off = 8
	case a.Is6():
		off = 24
	}
	l := uint32(a.BitLen() / 8)
	x := []Expr{
		Meta{Key: MetaNFProto, DReg: Reg1},
		Cmp{Op: CmpEq, SReg: Reg1, Data: []byte{uint8(nfproto(a))}},
		Payload{Base: PayloadNetwork, Offset: off, Len: l, DReg: Reg1},
	}
	if p.Bits() < a.BitLen() {
		mask := make([]byte, l)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		x = append(x, Bitwise{SReg: Reg1, DReg: Reg1, Mask: mask})
	}
	return append(x, Cmp{Op: op, SReg: Reg1, Data: a.AsSlice()})
}

// SrcNet matches packets of p's family whose source is (CmpEq) or is not
// (CmpNeq) in p.
func SrcNet(p netip.Prefix, op CmpOp) []Expr { return netMatch(p, op, true) }

// DstNet matches packets of p's family whose destination is (CmpEq) or is
// not (CmpNeq) in p.
func DstNet(p netip.Prefix, op CmpOp) []Expr { return netMatch(p, op, false) }

func ifname(name string) []byte {
	b := make([]byte, ifnamsiz)
	copy(b, name)
	return b
}

// Iifname matches the input interface name (CmpEq or CmpNeq).
func Iifname(name string, op CmpOp) []Expr {
	return []Expr{Meta{Key: MetaIifname, DReg: Reg1}, Cmp{Op: op, SReg: Reg1, Data: ifname(name)}}
}

// Oifname matches the output interface name (CmpEq or CmpNeq).
func Oifname(name string, op CmpOp) []Expr {
	return []Expr{Meta{Key: MetaOifname, DReg: Reg1}, Cmp{Op: op, SReg: Reg1, Data: ifname(name)}}
}

// Transport protocols for L4Proto.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// L4Proto matches the transport protocol (ProtoTCP, ProtoUDP).
func L4Proto(proto uint8) []Expr {
	return []Expr{Meta{Key: MetaL4Proto, DReg: Reg1}, Cmp{Op: CmpEq, SReg: Reg1, Data: []byte{proto}}}
}

// DstPort matches the TCP or UDP destination port proto/port.
func DstPort(proto uint8, port uint16) []Expr {
	return append(L4Proto(proto),
		Payload{Base: PayloadTransport, Offset: 2, Len: 2, DReg: Reg1},
		Cmp{Op: CmpEq, SReg: Reg1, Data: binary.BigEndian.AppendUint16(nil, port)})
}

// DstLocal matches packets addressed to one of the namespace's own
// addresses (`fib daddr type local`, iptables' `-m addrtype --dst-type
// LOCAL`), which is what a published port without a host IP listens on.
func DstLocal() []Expr {
	return []Expr{
		Fib{Flags: FibFlagDaddr, Result: FibResultAddrTy, DReg: Reg1},
		Cmp{Op: CmpEq, SReg: Reg1, Data: binary.NativeEndian.AppendUint32(nil, rtnLocal)},
	}
}

// CtState matches connections in any of the states of mask
// (CtStateEstab|CtStateRelated, say).
func CtState(mask uint32) []Expr {
	return []Expr{
		Ct{Key: CtKeyState, DReg: Reg1},
		Bitwise{SReg: Reg1, DReg: Reg1, Mask: binary.NativeEndian.AppendUint32(nil, mask)},
		Cmp{Op: CmpNeq, SReg: Reg1, Data: make([]byte, 4)},
	}
}

// Accept, Drop, Return and Jump are the verdicts.
func Accept() Expr           { return Immediate{DReg: RegVerdict, Verdict: VerdictAccept} }
func Drop() Expr             { return Immediate{DReg: RegVerdict, Verdict: VerdictDrop} }
func Return() Expr           { return Immediate{DReg: RegVerdict, Verdict: VerdictReturn} }
func Jump(chain string) Expr { return Immediate{DReg: RegVerdict, Verdict: VerdictJump, Chain: chain} }

// Masquerade rewrites the source to the outgoing interface's address.
func Masquerade() Expr { return Masq{} }

// DNAT rewrites the destination to to (address and port), the action of a
// published port.
func DNAT(to netip.AddrPort) []Expr {
	a := to.Addr().Unmap()
	return []Expr{
		Immediate{DReg: Reg1, Data: a.AsSlice()},
		Immediate{DReg: Reg2, Data: binary.BigEndian.AppendUint16(nil, to.Port())},
		NAT{Type: NATDest, Family: nfproto(a), RegAddr: Reg1, RegProto: Reg2},
	}
}

// R joins matches and actions into one expression list for AddRule:
// R(SrcNet(p, CmpEq), Oifname(br, CmpNeq), []Expr{Masquerade()}).
func R(parts ...[]Expr) []Expr {
	var out []Expr
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
