package shimclient

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"skiffd/internal/runtime/spec"
)

// nsLink is /proc/<pid>[/task/<tid>]/ns/<kind>'s target, which names the
// namespace ("net:[4026532281]").
func nsLink(t *testing.T, proc, kind string) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join("/proc", proc, "ns", kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// foreignThreads returns the namespaces of kind, other than own, that
// threads of pid are in.
func foreignThreads(t *testing.T, pid int, kind, own string) []string {
	t.Helper()
	dir := filepath.Join(strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(filepath.Join("/proc", dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		l, err := os.Readlink(filepath.Join("/proc", dir, task.Name(), "ns", kind))
		if err != nil {
			continue // the thread ended meanwhile
		}
		if l != own && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// TestPoolShimPreparesNamespaces checks that a pre-started shim makes its
// container's network, IPC and UTS namespaces while it waits (issue 13:
// a network namespace made at the fork cost 0.4 ms of every start), that
// init is born in those very namespaces, and that a container taking them
// from the host (--network host --ipc host --uts host) gets the host's.
// Either way no shim thread stays in a namespace of its own making
// afterwards: unused, they go with the thread.
func TestPoolShimPreparesNamespaces(t *testing.T) {
	kinds := []string{"net", "ipc", "uts"}
	own := map[string]string{}
	for _, k := range kinds {
		own[k] = nsLink(t, "self", k)
	}
	for _, fresh := range []bool{true, false} {
		name := map[bool]string{true: "fresh", false: "host"}[fresh]
		t.Run(name, func(t *testing.T) {
			rt := newRuntime(t)
			w := pollIdleShim(t, rt)
			// The shim makes them once it runs, a moment after the
			// pool holds it.
			prepared := map[string]string{}
			poll(t, "the waiting shim's prepared namespaces (one of each kind besides its own)", func() bool {
				for _, k := range kinds {
					got := foreignThreads(t, w, k, own[k])
					if len(got) != 1 {
						return false
					}
					prepared[k] = got[0]
				}
				return true
			})
			// Not on the main thread, which the runtime cannot end: it
			// would hold them, and the container's cgroups, for good.
			for _, k := range kinds {
				if got := nsLink(t, filepath.Join(strconv.Itoa(w), "task", strconv.Itoa(w)), k); got != own[k] {
					t.Errorf("waiting shim's main thread is in %s namespace %s, want its own %s", k, got, own[k])
				}
			}
			s := newSpec(t, "sleep", "100")
			if !fresh {
				s.Namespaces = slices.DeleteFunc(s.Namespaces, func(n spec.Namespace) bool {
					return n.Type == spec.NetworkNamespace || n.Type == spec.IPCNamespace || n.Type == spec.UTSNamespace
				})
				s.Hostname = ""
			}
			c := create(t, rt, s)
			for _, k := range kinds {
				want := prepared[k]
				if !fresh {
					want = own[k]
				}
				if got := nsLink(t, strconv.Itoa(c.InitPid()), k); got != want {
					t.Errorf("init's %s namespace = %s, want %s (own %s, prepared %s)", k, got, want, own[k], prepared[k])
				}
			}
			// The thread init was forked from has ended; the shim,
			// which takes more containers, has one in fresh
			// namespaces ready for the next.
			poll(t, "the used thread gone and a new one prepared", func() bool {
				for _, k := range kinds {
					got := foreignThreads(t, w, k, own[k])
					if len(got) != 1 || got[0] == prepared[k] {
						return false
					}
				}
				return true
			})
		})
	}
}
