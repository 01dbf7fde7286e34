package netlink

import (
	"net/netip"
	"syscall"
)

// RouteBatch collects changes to one namespace's interfaces, addresses and
// routes that Send hands to the kernel in a single datagram: a container's
// interface is configured with one round trip instead of one per change.
// The kernel applies them in the order they were added. A RouteBatch
// is not safe for concurrent use. (Batch is nf_tables' transaction.)
type RouteBatch struct {
	h    *Handle
	reqs []req
	err  error
}

// RouteBatch returns an empty batch of changes for h's namespace.
func (h *Handle) RouteBatch() *RouteBatch { return &RouteBatch{h: h} }

// AddAddr adds h.AddAddr(index, p) to the batch.
func (b *RouteBatch) AddAddr(index int, p netip.Prefix) {
	op := "add address " + p.String()
	body, err := addrMsg(op, syscall.RTM_NEWADDR, index, p)
	b.add(op, syscall.RTM_NEWADDR, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, body, err)
}

// SetUp adds h.SetUp(index) to the batch.
func (b *RouteBatch) SetUp(index int) {
	b.add("set up", syscall.RTM_NEWLINK, 0, upMsg(index), nil)
}

// SetDown adds h.SetDown(index) to the batch.
func (b *RouteBatch) SetDown(index int) {
	b.add("set down", syscall.RTM_NEWLINK, 0, ifinfomsg(syscall.AF_UNSPEC, int32(index), 0, syscall.IFF_UP), nil)
}

// AddRoute adds h.AddRoute(r) to the batch.
func (b *RouteBatch) AddRoute(r Route) {
	op := "add route " + r.Dst.String()
	body, err := routeMsg(op, syscall.RTM_NEWROUTE, r)
	b.add(op, syscall.RTM_NEWROUTE, syscall.NLM_F_CREATE|syscall.NLM_F_EXCL, body, err)
}

// AddDefaultRoute adds h.AddDefaultRoute(gw, index) to the batch.
func (b *RouteBatch) AddDefaultRoute(gw netip.Addr, index int) {
	b.AddRoute(defaultRoute(gw, index))
}

func (b *RouteBatch) add(op string, typ, flags uint16, body []byte, err error) {
	if err != nil {
		if b.err == nil {
			b.err = err
		}
		return
	}
	b.reqs = append(b.reqs, req{op: op, typ: typ, flags: flags, body: body})
}

// Send sends the batch and returns the first error, in the order the
// changes were added, with the same text as the Handle method's; the
// changes before it are applied, and those after it were tried. A change
// the batch could not even encode fails Send before anything is sent.
func (b *RouteBatch) Send() error {
	if b.err != nil {
		return b.err
	}
	return b.h.c.requestAll(b.reqs)
}
