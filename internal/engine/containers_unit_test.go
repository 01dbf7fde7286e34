package engine

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
	"skiffd/internal/image"
	"skiffd/internal/runtime/spec"
)

func TestMergeImageConfig(t *testing.T) {
	img := &image.ContainerConfig{
		User:         "img",
		Env:          []string{"PATH=/img/bin", "A=img", "B=img"},
		Cmd:          []string{"/bin/sh"},
		Entrypoint:   []string{"/entry"},
		WorkingDir:   "/work",
		Labels:       map[string]string{"l1": "img", "l2": "img"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   "SIGQUIT",
	}
	for _, tc := range []struct {
		name string
		in   types.Config
		want types.Config
	}{
		{
			name: "empty request takes everything",
			in:   types.Config{},
			want: types.Config{User: "img", Env: []string{"PATH=/img/bin", "A=img", "B=img"}, Cmd: []string{"/bin/sh"},
				Entrypoint: []string{"/entry"}, WorkingDir: "/work", Labels: map[string]string{"l1": "img", "l2": "img"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"},
		},
		{
			name: "request env first, image vars not overridden appended",
			in:   types.Config{Env: []string{"B=req", "C=req"}, Cmd: []string{"echo"}, User: "1000", WorkingDir: "/tmp", StopSignal: "SIGINT", Labels: map[string]string{"l2": "req"}},
			want: types.Config{User: "1000", Env: []string{"B=req", "C=req", "PATH=/img/bin", "A=img"}, Cmd: []string{"echo"},
				Entrypoint: []string{"/entry"}, WorkingDir: "/tmp", Labels: map[string]string{"l1": "img", "l2": "req"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGINT"},
		},
		{
			name: "an entrypoint in the request drops the image's cmd",
			in:   types.Config{Entrypoint: []string{"/other"}},
			want: types.Config{User: "img", Env: []string{"PATH=/img/bin", "A=img", "B=img"}, Entrypoint: []string{"/other"},
				WorkingDir: "/work", Labels: map[string]string{"l1": "img", "l2": "img"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"},
		},
		{
			name: "an explicitly empty entrypoint stays empty",
			in:   types.Config{Entrypoint: []string{}, Cmd: []string{"ls"}},
			want: types.Config{User: "img", Env: []string{"PATH=/img/bin", "A=img", "B=img"}, Entrypoint: []string{}, Cmd: []string{"ls"},
				WorkingDir: "/work", Labels: map[string]string{"l1": "img", "l2": "img"},
				ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGQUIT"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			mergeImageConfig(&got, img)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("merge(%+v) =\n%+v\nwant\n%+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		entry, cmd []string
		path       string
		args       []string
		err        bool
	}{
		{entry: nil, cmd: []string{"echo", "hi"}, path: "echo", args: []string{"hi"}},
		{entry: []string{"/e", "-x"}, cmd: []string{"a"}, path: "/e", args: []string{"-x", "a"}},
		{entry: []string{""}, cmd: []string{"ls"}, path: "ls", args: []string{}},
		{entry: []string{""}, err: true},
		{err: true},
	} {
		path, args, err := command(&types.Config{Entrypoint: tc.entry, Cmd: tc.cmd})
		if (err != nil) != tc.err || path != tc.path || (!tc.err && !slices.Equal(args, tc.args)) {
			t.Errorf("command(%q, %q) = %q %q %v, want %q %q (error %v)", tc.entry, tc.cmd, path, args, err, tc.path, tc.args, tc.err)
		}
	}
}

func TestValidateHostConfig(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name string
		hc   types.HostConfig
		want string // "" = valid
	}{
		{"defaults", types.HostConfig{}, ""},
		{"cpus in range", types.HostConfig{Resources: types.Resources{NanoCPUs: 1e9}}, ""},
		{"cpus beyond", types.HostConfig{Resources: types.Resources{NanoCPUs: 5e9}}, "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"},
		{"cpus with period", types.HostConfig{Resources: types.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"memory minimum", types.HostConfig{Resources: types.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{"memory ok", types.HostConfig{Resources: types.Resources{Memory: 64 << 20, PidsLimit: i64(50)}}, ""},
		{"swap below memory", types.HostConfig{Resources: types.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{"swap without memory", types.HostConfig{Resources: types.Resources{MemorySwap: 32 << 20}}, "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{"cfs period", types.HostConfig{Resources: types.Resources{CPUPeriod: 10}}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{"unknown policy", types.HostConfig{RestartPolicy: types.RestartPolicy{Name: "sometimes"}}, "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{"count without on-failure", types.HostConfig{RestartPolicy: types.RestartPolicy{Name: "always", MaximumRetryCount: 3}}, "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{"negative count", types.HostConfig{RestartPolicy: types.RestartPolicy{Name: "on-failure", MaximumRetryCount: -1}}, "invalid restart policy: maximum retry count cannot be negative"},
		{"autoremove with policy", types.HostConfig{AutoRemove: true, RestartPolicy: types.RestartPolicy{Name: "always"}}, "can't create 'AutoRemove' container with restart policy"},
		{"autoremove with no", types.HostConfig{AutoRemove: true, RestartPolicy: types.RestartPolicy{Name: "no"}}, ""},
		{"oom score", types.HostConfig{OomScoreAdj: 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validateHostConfig(&tc.hc, fullHost, 4, false)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("validateHostConfig = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckUnsupported(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		cfg  types.Config
		hc   types.HostConfig
		want string
	}{
		{"plain", types.Config{}, types.HostConfig{NetworkMode: "default"}, ""},
		{"host network", types.Config{}, types.HostConfig{NetworkMode: "host"}, ""},
		{"binds are supported", types.Config{}, types.HostConfig{Binds: []string{"/a:/b"}}, ""},
		{"empty port map", types.Config{}, types.HostConfig{PortBindings: types.PortMap{}}, ""},
		{"privileged", types.Config{}, types.HostConfig{Privileged: true}, ""},
		{"device rule", types.Config{}, types.HostConfig{Resources: types.Resources{DeviceCgroupRules: []string{"c 1:3 rwm"}}}, ""},
		{"bad device rule", types.Config{}, types.HostConfig{Resources: types.Resources{DeviceCgroupRules: []string{"x 1:3"}}}, "invalid device cgroup rule format: 'x 1:3'"},
		{"container network", types.Config{}, types.HostConfig{NetworkMode: "container:web"}, ""},
		{"init", types.Config{}, types.HostConfig{Init: &yes}, ""},
		{"sysctl not namespaced", types.Config{}, types.HostConfig{Sysctls: map[string]string{"vm.swappiness": "1"}}, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"net sysctl", types.Config{}, types.HostConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, ""},
		{"net sysctl on host network", types.Config{}, types.HostConfig{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, "not allowed in host network namespace"},
		{"ipc sysctl", types.Config{}, types.HostConfig{Sysctls: map[string]string{"kernel.shmmax": "1000000"}}, ""},
		{"device requests", types.Config{}, types.HostConfig{Resources: types.Resources{DeviceRequests: []types.DeviceRequest{{Driver: "nvidia"}}}}, "HostConfig.DeviceRequests"},
		{"seccomp unconfined", types.Config{}, types.HostConfig{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges"}}, ""},
		{"apparmor profile", types.Config{}, types.HostConfig{SecurityOpt: []string{"apparmor=myprofile"}}, "apparmor"},
		{"bad security opt", types.Config{}, types.HostConfig{SecurityOpt: []string{"bogus"}}, `Invalid --security-opt: "bogus"`},
		{"extra host", types.Config{}, types.HostConfig{ExtraHosts: []string{"db:10.0.0.1", "v6=[::1]"}}, ""},
		{"bad extra host", types.Config{}, types.HostConfig{ExtraHosts: []string{"db:notanip"}}, "invalid IP address in add-host"},
		{"extra host without IP", types.Config{}, types.HostConfig{ExtraHosts: []string{"db"}}, `bad format for add-host: "db"`},
		// What it stands for is found at start (none: the start fails).
		{"host-gateway", types.Config{}, types.HostConfig{ExtraHosts: []string{"host.docker.internal:host-gateway"}}, ""},
		{"cgroup parent", types.Config{}, types.HostConfig{Resources: types.Resources{CgroupParent: "/kubepods/pod1"}}, ""},
		{"cgroup parent escaping", types.Config{}, types.HostConfig{Resources: types.Resources{CgroupParent: "/../escape"}}, `invalid cgroup parent "/../escape": invalid name`},
		{"healthcheck", types.Config{Healthcheck: &types.HealthConfig{Test: []string{"CMD", "true"}}}, types.HostConfig{}, ""},
		{"healthcheck type", types.Config{Healthcheck: &types.HealthConfig{Test: []string{"BOGUS", "true"}}}, types.HostConfig{}, `unknown health check type "BOGUS"`},
		{"healthcheck none", types.Config{Healthcheck: &types.HealthConfig{Test: []string{"NONE"}}}, types.HostConfig{}, ""},
		{"bad ulimit", types.Config{}, types.HostConfig{Resources: types.Resources{Ulimits: []*types.Ulimit{{Name: "bogus"}}}}, "invalid ulimit type: bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkUnsupported(&tc.cfg, &tc.hc)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkUnsupported = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestShouldRestart(t *testing.T) {
	onFailure2 := types.RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	for _, tc := range []struct {
		name    string
		p       types.RestartPolicy
		code    int
		manual  bool
		count   int
		want    bool
		backoff time.Duration
	}{
		{"no", types.RestartPolicy{Name: "no"}, 1, false, 0, false, 0},
		{"always after success", types.RestartPolicy{Name: "always"}, 0, false, 0, true, 0},
		{"unless-stopped", types.RestartPolicy{Name: "unless-stopped"}, 0, false, 0, true, 0},
		{"unless-stopped stopped", types.RestartPolicy{Name: "unless-stopped"}, 0, true, 0, false, 0},
		{"on-failure success", onFailure2, 0, false, 0, false, 0},
		{"on-failure first", onFailure2, 1, false, 0, true, 0},
		{"on-failure second", onFailure2, 1, false, 1, true, 0},
		{"on-failure exhausted", onFailure2, 1, false, 2, false, 0},
		{"on-failure unlimited", types.RestartPolicy{Name: "on-failure"}, 1, false, 100, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.backoff
			got, _ := shouldRestart(tc.p, tc.code, tc.manual, tc.count, &b, time.Second)
			if got != tc.want {
				t.Errorf("shouldRestart = %v, want %v", got, tc.want)
			}
		})
	}

	// The delay doubles from 100 ms to at most a minute, and starts over
	// after a run of 10 s.
	var b time.Duration
	var delays []time.Duration
	for range 12 {
		_, d := shouldRestart(types.RestartPolicy{Name: "always"}, 1, false, 0, &b, time.Second)
		delays = append(delays, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond,
		25600 * time.Millisecond, 51200 * time.Millisecond, time.Minute, time.Minute}
	if !slices.Equal(delays, want) {
		t.Errorf("backoff delays = %v, want %v", delays, want)
	}
	if _, d := shouldRestart(types.RestartPolicy{Name: "always"}, 1, false, 0, &b, 11*time.Second); d != 100*time.Millisecond {
		t.Errorf("delay after a long run = %v, want 100ms", d)
	}
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		add, drop  []string
		has, lacks []string
		exactly    []string
		err        bool
	}{
		{has: []string{"CAP_CHOWN", "CAP_KILL"}, lacks: []string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}},
		{add: []string{"NET_ADMIN"}, drop: []string{"chown"}, has: []string{"CAP_NET_ADMIN"}, lacks: []string{"CAP_CHOWN"}},
		{drop: []string{"ALL"}, exactly: []string{}},
		{add: []string{"CAP_KILL"}, drop: []string{"ALL"}, exactly: []string{"CAP_KILL"}},
		{add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, has: []string{"CAP_NET_ADMIN"}, lacks: []string{"CAP_SYS_ADMIN"}},
		{add: []string{"BOGUS"}, err: true},
	} {
		got, err := capabilities(tc.add, tc.drop)
		if (err != nil) != tc.err {
			t.Errorf("capabilities(%q, %q) error %v, want error %v", tc.add, tc.drop, err, tc.err)
			continue
		}
		for _, c := range tc.has {
			if !slices.Contains(got, c) {
				t.Errorf("capabilities(%q, %q) = %q lacks %s", tc.add, tc.drop, got, c)
			}
		}
		for _, c := range tc.lacks {
			if slices.Contains(got, c) {
				t.Errorf("capabilities(%q, %q) = %q has %s", tc.add, tc.drop, got, c)
			}
		}
		if tc.exactly != nil && !slices.Equal(got, tc.exactly) {
			t.Errorf("capabilities(%q, %q) = %q, want %q", tc.add, tc.drop, got, tc.exactly)
		}
	}
}

func TestLogRotationAndSize(t *testing.T) {
	for _, tc := range []struct {
		cfg     map[string]string
		typ     string
		size    int64
		files   int
		wantErr bool
	}{
		{typ: "json-file", files: 1},
		{typ: "json-file", cfg: map[string]string{"max-size": "10m", "max-file": "3"}, size: 10 << 20, files: 3},
		{typ: "json-file", cfg: map[string]string{"max-size": "1.5k"}, size: 1536, files: 1},
		{typ: "json-file", cfg: map[string]string{"max-file": "3"}, size: 0, files: 1}, // dockerd: no size, no rotation
		{typ: "asdf", wantErr: true},
		{typ: "none", cfg: map[string]string{"anything": "x"}, files: 1},
		{typ: "json-file", cfg: map[string]string{"max-size": "x"}, wantErr: true},
		{typ: "json-file", cfg: map[string]string{"bogus": "1"}, wantErr: true},
		{typ: "syslog", size: 20 << 20, files: 5}, // its local cache
		{typ: "gelf", cfg: map[string]string{"gelf-address": "udp://127.0.0.1:12201"}, size: 20 << 20, files: 5},
		{typ: "gelf", wantErr: true},               // no gelf-address
		{typ: "fluentd", size: 20 << 20, files: 5}, // tcp://127.0.0.1:24224, cached
		{typ: "fluentd", cfg: map[string]string{"fluentd-address": "udp://x:1"}, wantErr: true},
		{typ: "fluentd", cfg: map[string]string{"cache-max-file": "2"}, size: 20 << 20, files: 2},
		{typ: "splunk", wantErr: true},
		{typ: "journald", cfg: map[string]string{"labels": "a", "tag": "{{.Name}}"}, size: 20 << 20, files: 5},
		{typ: "journald", cfg: map[string]string{"max-size": "1m"}, wantErr: true},
		{typ: "local", size: 20 << 20, files: 5},
		{typ: "local", cfg: map[string]string{"max-size": "1m", "max-file": "2"}, size: 1 << 20, files: 2},
		{typ: "local", cfg: map[string]string{"max-file": "1"}, wantErr: true},
		{typ: "json-file", cfg: map[string]string{"mode": "non-blocking", "max-buffer-size": "1m"}, files: 1},
		{typ: "json-file", cfg: map[string]string{"mode": "odd"}, wantErr: true},
	} {
		lf, err := logRotation(types.LogConfig{Type: tc.typ, Config: tc.cfg})
		size, files := lf.MaxSize, lf.MaxFiles
		if (err != nil) != tc.wantErr || (!tc.wantErr && (size != tc.size || files != tc.files)) {
			t.Errorf("logRotation(%s %v) = %d, %d, %v; want %d, %d (error %v)", tc.typ, tc.cfg, size, files, err, tc.size, tc.files, tc.wantErr)
		}
	}
}

func TestContainerEnv(t *testing.T) {
	got := containerEnv([]string{"A=1"}, "h1", true)
	want := []string{defaultPath, "HOSTNAME=h1", "TERM=xterm", "A=1"}
	if !slices.Equal(got, want) {
		t.Errorf("containerEnv = %q, want %q", got, want)
	}
	got = containerEnv([]string{"PATH=/x"}, "h1", false)
	if want := []string{"HOSTNAME=h1", "PATH=/x"}; !slices.Equal(got, want) {
		t.Errorf("containerEnv with PATH = %q, want %q", got, want)
	}
}

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"a,ctrl-@,ctrl-_", []byte{'a', 0, 31}, false},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
	} {
		got, err := parseDetachKeys(tc.in)
		if (err != nil) != tc.err || !bytes.Equal(got, tc.want) {
			t.Errorf("parseDetachKeys(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestEscapeReader(t *testing.T) {
	keys := []byte{16, 17}
	for _, tc := range []struct {
		name     string
		in       string
		want     string
		detached bool
	}{
		{"plain", "hello", "hello", false},
		{"detach", "ab\x10\x11cd", "ab", true},
		{"prefix only", "ab\x10cd", "ab\x10cd", false},
		{"prefix at end", "ab\x10", "ab\x10", false},
		{"repeated prefix", "\x10\x10\x11", "\x10", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time, so held-back bytes cross reads.
			r := newEscapeReader(iotest.OneByteReader(strings.NewReader(tc.in)), keys)
			got, err := io.ReadAll(r)
			if string(got) != tc.want || (err == errDetached) != tc.detached || (err != nil && err != errDetached) {
				t.Errorf("read %q = %q, %v; want %q (detached %v)", tc.in, got, err, tc.want, tc.detached)
			}
		})
	}
}

func FuzzEscapeReader(f *testing.F) {
	f.Add([]byte("ab\x10\x11cd"))
	f.Add([]byte("\x10\x10\x10"))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := io.ReadAll(newEscapeReader(bytes.NewReader(in), []byte{16, 17}))
		idx := bytes.Index(in, []byte{16, 17})
		if idx < 0 {
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("no detach sequence in %q: got %q, %v", in, got, err)
			}
			return
		}
		if err != errDetached || !bytes.Equal(got, in[:idx]) {
			t.Fatalf("input %q: got %q, %v; want %q and a detach", in, got, err, in[:idx])
		}
	})
}

func TestParseDeviceRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "type major minor access", "" for an error
	}{
		{"c 1:3 rwm", "c 1 3 rwm"},
		{"b *:* m", "b -1 -1 m"},
		{"a", "a -1 -1 rwm"},
		{"c 10:200", "c 10 200 rwm"},
		{"c 1:3 rwx", ""},
		{"c 1-3", ""},
		{"d 1:3", ""},
		{"", ""},
	} {
		r, err := parseDeviceRule(tc.in)
		got := ""
		if err == nil {
			got = fmt.Sprintf("%s %d %d %s", r.Type, r.Major, r.Minor, r.Access)
		}
		if got != tc.want {
			t.Errorf("parseDeviceRule(%q) = %q (%v), want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestProbeArgs(t *testing.T) {
	for _, tc := range []struct {
		test []string
		want []string
		err  bool
	}{
		{[]string{"CMD", "curl", "-f", "x"}, []string{"curl", "-f", "x"}, false},
		{[]string{"CMD-SHELL", "test -e /x || exit 1"}, []string{"/bin/sh", "-c", "test -e /x || exit 1"}, false},
		{[]string{"CMD"}, nil, true},
		{[]string{"WHAT", "x"}, nil, true},
	} {
		got, err := probeArgs(tc.test)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("probeArgs(%q) = %q, %v; want %q (error %v)", tc.test, got, err, tc.want, tc.err)
		}
	}
	var b limitedBuffer
	b.Write(bytes.Repeat([]byte("x"), maxProbeOutput-1))
	if n, _ := b.Write([]byte("abc")); n != 3 || b.String() != strings.Repeat("x", maxProbeOutput-1)+"a" {
		t.Errorf("limitedBuffer kept %d bytes, want %d", len(b.String()), maxProbeOutput)
	}
}

func TestMergeMounts(t *testing.T) {
	dests := func(ms []spec.Mount) string {
		var d []string
		for _, m := range ms {
			d = append(d, m.Type+":"+m.Destination)
		}
		return strings.Join(d, " ")
	}
	base := spec.DefaultMounts()
	bind := func(dst string) spec.Mount { return spec.Mount{Destination: dst, Type: "bind", Source: "/h"} }
	for _, tc := range []struct {
		name string
		user []spec.Mount
		want string
	}{
		{"none", nil, "proc:/proc tmpfs:/dev devpts:/dev/pts sysfs:/sys cgroup:/sys/fs/cgroup mqueue:/dev/mqueue tmpfs:/dev/shm"},
		{"data", []spec.Mount{bind("/data")}, "proc:/proc tmpfs:/dev devpts:/dev/pts sysfs:/sys cgroup:/sys/fs/cgroup mqueue:/dev/mqueue tmpfs:/dev/shm bind:/data"},
		{"own shm", []spec.Mount{{Destination: "/dev/shm", Type: "tmpfs", Source: "tmpfs"}}, "proc:/proc tmpfs:/dev devpts:/dev/pts sysfs:/sys cgroup:/sys/fs/cgroup mqueue:/dev/mqueue tmpfs:/dev/shm"},
		// -v /dev:/dev: nothing of ours below the bound /dev but the
		// container's shared memory, mounted into it afterwards.
		{"bound dev", []spec.Mount{bind("/dev")}, "proc:/proc sysfs:/sys cgroup:/sys/fs/cgroup bind:/dev tmpfs:/dev/shm"},
		{"bound dev/", []spec.Mount{bind("/dev/")}, "proc:/proc sysfs:/sys cgroup:/sys/fs/cgroup bind:/dev/ tmpfs:/dev/shm"},
	} {
		if got := dests(mergeMounts(base, tc.user)); got != tc.want {
			t.Errorf("%s: mergeMounts = %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestValidateNetContainerMode: what a container in another's network
// namespace cannot have of its own, with dockerd's texts and order; the
// image's exposed ports do not count (the check sees the client's).
func TestValidateNetContainerMode(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  types.Config
		hc   types.HostConfig
		err  string
	}{
		{"bridge", types.Config{Hostname: "h"}, types.HostConfig{NetworkMode: "bridge", DNS: []string{"1.1.1.1"}}, ""},
		{"plain", types.Config{}, types.HostConfig{NetworkMode: "container:db"}, ""},
		{"no name", types.Config{}, types.HostConfig{NetworkMode: "container:"}, "invalid network mode: invalid container format container:<name|id>"},
		{"hostname", types.Config{Hostname: "h"}, types.HostConfig{NetworkMode: "container:db", DNS: []string{"1.1.1.1"}}, "conflicting options: hostname and the network mode"},
		{"links", types.Config{}, types.HostConfig{NetworkMode: "container:db", Links: []string{"a:b"}}, "container type network can't be used with links"},
		{"dns", types.Config{}, types.HostConfig{NetworkMode: "container:db", DNS: []string{"1.1.1.1"}}, "conflicting options: dns and the network mode"},
		{"extra hosts", types.Config{}, types.HostConfig{NetworkMode: "container:db", ExtraHosts: []string{"a:1.2.3.4"}}, "conflicting options: custom host-to-IP mapping and the network mode"},
		{"publish all", types.Config{}, types.HostConfig{NetworkMode: "container:db", PublishAllPorts: true}, "conflicting options: port publishing and the container type network mode"},
		{"expose", types.Config{ExposedPorts: map[string]struct{}{"80/tcp": {}}}, types.HostConfig{NetworkMode: "container:db"}, "conflicting options: port exposing and the container type network mode"},
	} {
		err := validateNetContainerMode(&c.cfg, &c.hc)
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}

func TestLogCompressAndAttrs(t *testing.T) {
	for _, tc := range []struct {
		cfg      map[string]string
		err      string
		compress bool
	}{
		{cfg: map[string]string{"max-size": "1m", "max-file": "3", "compress": "false"}},
		{cfg: map[string]string{"max-size": "1m", "max-file": "3", "compress": "true"}, compress: true},
		{cfg: map[string]string{"max-size": "1m", "compress": "true"}, err: "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{cfg: map[string]string{"max-file": "3", "compress": "true"}, err: "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{cfg: map[string]string{"compress": "maybe"}, err: "invalid compress for log: maybe"},
		{cfg: map[string]string{"labels-regex": "("}, err: "invalid labels-regex for log"},
		{cfg: map[string]string{"tag": "{{.Name | upper}}"}, err: "skiffd does not support the log tag action"},
		{cfg: map[string]string{"tag": "{{.Name"}, err: "unclosed action"},
	} {
		lf, err := logRotation(types.LogConfig{Type: "json-file", Config: tc.cfg})
		if tc.err == "" {
			if err != nil || lf.MaxFiles != 3 || lf.Compress != tc.compress {
				t.Errorf("logRotation(%v) = %+v, %v; want rotation over 3 files, compress %v", tc.cfg, lf, err, tc.compress)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("logRotation(%v) error = %v, want %q", tc.cfg, err, tc.err)
		}
	}

	c := container.New("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	c.Name = "/web"
	c.ImageID = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	c.Path, c.Args = "httpd", []string{"-f"}
	c.Config = &types.Config{Image: "busybox:latest", Labels: map[string]string{"app": "web", "tier": "front", "com.x.a": "1"},
		Env: []string{"PATH=/bin", "STAGE=prod", "LOG_A=1", "LOG_B=2"}}
	c.HostConfig = &types.HostConfig{LogConfig: types.LogConfig{Type: "json-file", Config: map[string]string{
		"labels": "app,missing", "labels-regex": "^com\\.x\\.", "env": "STAGE", "env-regex": "^LOG_",
		"tag": "{{.ImageName}}/{{.Name}}/{{.ID}}/{{ .ImageID }}/{{.Command}}/{{.DaemonName}}"}}}
	got, err := logAttrs(c)
	want := map[string]string{"app": "web", "com.x.a": "1", "STAGE": "prod", "LOG_A": "1", "LOG_B": "2",
		"tag": "busybox:latest/web/0123456789ab/fedcba987654/httpd -f/docker"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("logAttrs = %v, %v; want %v", got, err, want)
	}
	c.HostConfig.LogConfig.Config = map[string]string{"max-size": "1m"}
	if got, err := logAttrs(c); got != nil || err != nil {
		t.Errorf("logAttrs without attribute options = %v, %v; want none", got, err)
	}
}

// TestFluentdTarget: fluentd-address as dockerd's parseAddress reads it.
func TestFluentdTarget(t *testing.T) {
	for _, tc := range []struct{ in, network, addr, err string }{
		{"", "tcp", "127.0.0.1:24224", ""},
		{"fluent:24225", "tcp", "fluent:24225", ""},
		{"tcp://fluent", "tcp", "fluent:24224", ""},
		{"tls://[::1]:9", "tls", "[::1]:9", ""},
		{"tcp://:7", "tcp", "127.0.0.1:7", ""},
		{"unix:///run/fluent.sock", "unix", "/run/fluent.sock", ""},
		{"unix://", "", "", "path is empty"},
		{"udp://x", "", "", "unsupported scheme: 'udp'"},
		{"tcp://x:1/p", "", "", "should not contain a path element"},
		{"tcp://x:70000", "", "", `invalid port: strconv.ParseUint: parsing "70000": value out of range`},
	} {
		n, a, err := fluentdTarget(tc.in)
		if got := fmt.Sprint(err); n != tc.network || a != tc.addr || (tc.err == "") != (err == nil) || err != nil && got != tc.err {
			t.Errorf("fluentdTarget(%q) = %q, %q, %v; want %q, %q, %q", tc.in, n, a, err, tc.network, tc.addr, tc.err)
		}
	}
}
