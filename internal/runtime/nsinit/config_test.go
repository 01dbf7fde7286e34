package nsinit

import (
	"reflect"
	"testing"

	"skiffd/internal/runtime/spec"
)

// TestSyncMessagesBinary sends init's config, the exec helper's config and
// the messages both ways over a real sync socket pair: each comes back
// equal, through the binary form, and a message whose bytes are cut is an
// error, not a panic or a half-filled value taken for whole.
func TestSyncMessagesBinary(t *testing.T) {
	parent, child, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, b := NewConn(parent), NewConn(child)
	t.Cleanup(func() { a.Close(); b.Close() })

	sp := spec.Default("c1", "/var/lib/skiffd/c1/rootfs")
	sp.Process.Args = []string{"sh", "-c", "echo <&>"}
	sp.Seccomp = &spec.Seccomp{Filter: []spec.SockFilter{{Code: 6, K: 0x7fff0000}, {Code: 0x15, Jt: 1, Jf: 2, K: 59}}}
	adj := -500
	sp.Process.OOMScoreAdj = &adj
	for _, c := range []struct {
		send Encodable
		recv Decodable
	}{
		{InitConfig{Spec: sp, CgroupMode: CgroupHybrid, CgroupMounts: map[string]string{"memory": "/sys/fs/cgroup/memory/c1"},
			CgroupLinks: map[string]string{"cpu": "cpu,cpuacct"}}, new(InitConfig)},
		{InitConfig{CgroupMode: CgroupV2}, new(InitConfig)},
		{ExecConfig{Process: sp.Process, Namespaces: []string{"mnt", "pid"}, Seccomp: sp.Seccomp}, new(ExecConfig)},
		{ExecConfig{}, new(ExecConfig)},
		{Message{Type: MsgReady, Spans: map[string]int64{"init.rootfs": 1200, "init.config": 300}}, new(Message)},
		{Message{Type: MsgError, Error: "exec: \"x\": executable file not found in $PATH"}, new(Message)},
		{Message{Type: MsgPid, Pid: 4242}, new(Message)},
	} {
		if err := a.Send(c.send, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Recv(c.recv); err != nil {
			t.Fatalf("receive %T: %v", c.send, err)
		}
		if got := reflect.ValueOf(c.recv).Elem().Interface(); !reflect.DeepEqual(got, c.send) {
			t.Errorf("%T came back as\n%+v\nwant\n%+v", c.send, got, c.send)
		}
	}

	// A body cut short: the frame's length says 3 bytes of a message.
	if _, err := parent.Write([]byte{0, 0, 0, 3, 1, 'x', 9}); err != nil {
		t.Fatal(err)
	}
	var m Message
	if _, err := b.Recv(&m); err == nil {
		t.Errorf("a malformed message was received as %+v", m)
	}
}
