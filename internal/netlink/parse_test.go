package netlink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

func TestAttrRoundTrip(t *testing.T) {
	var e encoder
	e.str(3, "eth0")
	e.u32(4, 1500)
	e.begin(18 | nlaFNested)
	e.str(1, "veth")
	e.begin(2)
	e.attr(1, []byte{1, 2, 3})
	e.end()
	e.end()
	e.attr(7, nil)
	as, err := parseAttrs(e.b)
	if err != nil || len(as) != 4 {
		t.Fatalf("parseAttrs = %+v, %v", as, err)
	}
	if cstr(as[0].Data) != "eth0" || as[2].Type != 18 || as[3].Type != 7 || len(as[3].Data) != 0 {
		t.Fatalf("attrs = %+v", as)
	}
	if v, _ := u32(as[1].Data); v != 1500 {
		t.Fatalf("mtu = %d", v)
	}
	inner, err := attrMap(as[2].Data)
	if err != nil || cstr(inner[1]) != "veth" {
		t.Fatalf("nested = %v, %v", inner, err)
	}
	deep, err := attrMap(inner[2])
	if err != nil || !bytes.Equal(deep[1], []byte{1, 2, 3}) {
		t.Fatalf("nested twice = %v, %v", deep, err)
	}
}

func TestParseAttrsRejects(t *testing.T) {
	for _, b := range [][]byte{
		{3, 0, 1, 0},             // length below the header
		{9, 0, 1, 0, 1, 2, 3, 4}, // length past the end
	} {
		if _, err := parseAttrs(b); err == nil {
			t.Errorf("parseAttrs(%x) accepted", b)
		}
	}
	// Trailing bytes shorter than a header are padding.
	if as, err := parseAttrs([]byte{5, 0, 1, 0, 'x', 0, 0, 0, 0}); err != nil || len(as) != 1 {
		t.Errorf("parseAttrs with padding = %v, %v", as, err)
	}
}

// errorMsg builds an NLMSG_ERROR body as the kernel does with
// NETLINK_CAP_ACK and NETLINK_EXT_ACK.
func errorMsg(code int32, text string) message {
	b := binary.NativeEndian.AppendUint32(nil, uint32(code))
	b = appendMsg(b, 16, 5, 1, nil) // the request's header, payload capped
	e := encoder{b: b}
	e.str(nlmsgerrAttrMsg, text)
	e.u32(nlmsgerrAttrOffs, 20)
	return message{Type: syscall.NLMSG_ERROR, Flags: nlmFCapped | nlmFAckTLVs, Data: e.b}
}

func TestParseError(t *testing.T) {
	tests := []struct {
		m        message
		errno    syscall.Errno
		text     string
		wantFail bool
	}{
		{errorMsg(0, ""), 0, "", false},
		{errorMsg(-int32(syscall.EINVAL), "mtu less than device minimum"), syscall.EINVAL, "mtu less than device minimum", false},
		{message{Type: syscall.NLMSG_ERROR, Data: binary.NativeEndian.AppendUint32(nil, uint32(^uint32(syscall.EEXIST)+1))}, syscall.EEXIST, "", false},
		{message{Type: syscall.NLMSG_ERROR, Data: []byte{1}}, 0, "", true},
		{message{Type: syscall.NLMSG_ERROR, Data: binary.NativeEndian.AppendUint32(nil, 5)}, 0, "", true},
	}
	for i, tt := range tests {
		errno, text, err := parseError(tt.m)
		if (err != nil) != tt.wantFail || errno != tt.errno || text != tt.text {
			t.Errorf("%d: parseError = %v, %q, %v; want %v, %q, fail %v", i, errno, text, err, tt.errno, tt.text, tt.wantFail)
		}
	}
}

// TestExtAckMessage checks that the kernel's extended ACK text reaches the
// caller.
func TestExtAckMessage(t *testing.T) {
	_, h := testNetns(t)
	_, err := h.AddBridge("tbr-bad", 10)
	var ne *Error
	if !errors.As(err, &ne) || ne.Errno != syscall.EINVAL || ne.Msg == "" || !strings.Contains(err.Error(), ne.Msg) {
		t.Fatalf("AddBridge(mtu 10) = %#v, want *Error with EINVAL and the kernel's text", err)
	}
}

// TestLinksMultipartDump lists more links than fit one datagram, so the
// dump spans several reads.
func TestLinksMultipartDump(t *testing.T) {
	_, h := testNetns(t)
	const pairs = 60
	for i := 0; i < pairs; i++ {
		if _, err := h.AddVeth(Veth{Name: fmt.Sprintf("ma%d", i), PeerName: fmt.Sprintf("mb%d", i), PeerNS: Self}); err != nil {
			t.Fatal(err)
		}
	}
	links, err := h.Links()
	if err != nil || len(links) != 2*pairs+1 {
		t.Fatalf("Links = %d links, %v; want %d", len(links), err, 2*pairs+1)
	}
	names := map[string]bool{}
	for _, l := range links {
		names[l.Name] = true
	}
	if !names["ma0"] || !names[fmt.Sprintf("mb%d", pairs-1)] || !names["lo"] {
		t.Fatalf("Links misses names: %v", names)
	}
}

// FuzzParseAttrs checks that the attribute parser never panics and that
// whatever it accepts re-encodes to attributes that parse the same.
func FuzzParseAttrs(f *testing.F) {
	var e encoder
	e.str(3, "eth0")
	e.begin(18 | nlaFNested)
	e.str(1, "bridge")
	e.end()
	f.Add(e.b)
	f.Add([]byte{4, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := parseAttrs(b)
		if err != nil {
			return
		}
		var re encoder
		for _, a := range as {
			re.attr(a.Type, a.Data)
		}
		again, err := parseAttrs(re.b)
		if err != nil || len(again) != len(as) {
			t.Fatalf("re-parse = %d attrs, %v; want %d", len(again), err, len(as))
		}
		for i := range as {
			if again[i].Type != as[i].Type || !bytes.Equal(again[i].Data, as[i].Data) {
				t.Fatalf("attr %d: %+v != %+v", i, again[i], as[i])
			}
		}
	})
}

// FuzzParseReply feeds arbitrary datagrams through every reply decoder the
// package has: none may panic, whatever the kernel (or a corrupted buffer)
// sends.
func FuzzParseReply(f *testing.F) {
	link := encoder{b: ifinfomsg(0, 2, 1, 0)}
	link.str(iflaIfname, "eth0")
	link.attr(iflaStats64, make([]byte, 64))
	link.begin(iflaLinkinfo)
	link.str(iflaInfoKind, "veth")
	link.end()
	f.Add(appendMsg(nil, syscall.RTM_NEWLINK, 2, 1, link.b))
	f.Add(appendMsg(nil, syscall.RTM_NEWADDR, 2, 1, []byte{2, 24, 0, 0, 2, 0, 0, 0, 8, 0, 2, 0, 10, 0, 0, 1}))
	f.Add(appendMsg(nil, syscall.RTM_NEWROUTE, 2, 1, []byte{2, 0, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0, 8, 0, 5, 0, 10, 0, 0, 1}))
	f.Add(appendMsg(nil, syscall.NLMSG_ERROR, 0, 1, errorMsg(-1, "x").Data))
	f.Add(appendMsg(nil, nftType(nftMsgNewChain), 0, 1, []byte{2, 0, 0, 0, 8, 0, 4, 0x80, 12, 0, 1, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, _ := parseMessages(b)
		for _, m := range ms {
			m.Flags |= nlmFAckTLVs
			parseError(m)
			m.Flags &^= nlmFCapped
			parseError(m)
			parseLink(m.Data)
			parseAddr(m.Data)
			parseRoute(m.Data)
			parseChain(m.Data)
			parseRule(m.Data)
		}
	})
}
