package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"skiffd/internal/skifftest"
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/errdefs"
	"skiffd/internal/filters"
	"skiffd/internal/image"
)

func TestMergeCommitConfig(t *testing.T) {
	ctr := &image.ContainerConfig{
		User: "app", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sleep", "300"}, WorkingDir: "/w",
		Labels: map[string]string{"l": "ctr", "k": "ctr"}, ExposedPorts: map[string]struct{}{"80/tcp": {}},
		Volumes: map[string]struct{}{"/data": {}}, StopSignal: "SIGINT",
		Healthcheck: &image.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3},
	}
	for _, tc := range []struct {
		name    string
		user    *image.ContainerConfig
		changes []string
		check   func(*image.ContainerConfig) string
	}{
		{name: "no changes keeps the container's", check: func(c *image.ContainerConfig) string {
			if c.User != "app" || !slices.Equal(c.Cmd, []string{"sleep", "300"}) || c.WorkingDir != "/w" || c.StopSignal != "SIGINT" ||
				!slices.Equal(c.Env, []string{"PATH=/bin", "A=1"}) || c.Labels["l"] != "ctr" || c.Healthcheck == nil {
				return "container's config not kept"
			}
			return ""
		}},
		{name: "CMD change", changes: []string{`CMD ["sh"]`}, check: func(c *image.ContainerConfig) string {
			if !slices.Equal(c.Cmd, []string{"sh"}) {
				return "Cmd not replaced"
			}
			return ""
		}},
		{name: "ENTRYPOINT clears the container's Cmd", changes: []string{`ENTRYPOINT ["/bin/app"]`}, check: func(c *image.ContainerConfig) string {
			if !slices.Equal(c.Entrypoint, []string{"/bin/app"}) || len(c.Cmd) != 0 {
				return "want Entrypoint /bin/app and no Cmd"
			}
			return ""
		}},
		{name: "ENV and LABEL merge", changes: []string{"ENV A=2 B=3", "LABEL l=new"}, check: func(c *image.ContainerConfig) string {
			if !slices.Equal(c.Env, []string{"PATH=/bin", "A=2", "B=3"}) || c.Labels["l"] != "new" || c.Labels["k"] != "ctr" {
				return "env or labels wrong"
			}
			return ""
		}},
		{name: "body config completed", user: &image.ContainerConfig{Env: []string{"X=1"}, Cmd: []string{"top"}, Labels: map[string]string{"b": "1"}},
			check: func(c *image.ContainerConfig) string {
				if !slices.Equal(c.Env, []string{"X=1", "PATH=/bin", "A=1"}) || !slices.Equal(c.Cmd, []string{"top"}) || c.User != "app" ||
					c.Labels["b"] != "1" || c.Labels["l"] != "ctr" || len(c.Volumes) != 1 || len(c.ExposedPorts) != 1 {
					return "body config not completed from the container's"
				}
				return ""
			}},
		{name: "healthcheck completed", user: &image.ContainerConfig{Healthcheck: &image.HealthConfig{Timeout: time.Minute}},
			check: func(c *image.ContainerConfig) string {
				h := c.Healthcheck
				if h == nil || !slices.Equal(h.Test, []string{"CMD", "true"}) || h.Interval != time.Second || h.Timeout != time.Minute || h.Retries != 3 {
					return "healthcheck not completed"
				}
				return ""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := ctr
			if tc.user != nil {
				base = tc.user
			}
			before := *ctr
			got, err := image.ApplyChanges(base, tc.changes)
			if err != nil {
				t.Fatal(err)
			}
			mergeCommitConfig(got, ctr)
			if msg := tc.check(got); msg != "" {
				b, _ := json.Marshal(got)
				t.Errorf("%s: %s", msg, b)
			}
			if !reflect.DeepEqual(before, *ctr) {
				t.Errorf("merge changed the container's config")
			}
		})
	}
}

func TestImageConfigOf(t *testing.T) {
	stop := 5
	c := &types.Config{Hostname: "h", User: "u", Env: []string{"A=1"}, Cmd: types.StrSlice{"a", "b"}, Entrypoint: types.StrSlice{"e"},
		Image: "busybox", WorkingDir: "/w", Labels: map[string]string{"k": "v"}, StopSignal: "SIGTERM", StopTimeout: &stop,
		Healthcheck: &types.HealthConfig{Test: []string{"NONE"}}, MacAddress: "dropped"}
	got := imageConfigOf(c)
	b, _ := json.Marshal(got)
	for _, want := range []string{`"Hostname":"h"`, `"User":"u"`, `"Cmd":["a","b"]`, `"Entrypoint":["e"]`, `"Image":"busybox"`, `"StopTimeout":5`, `"Healthcheck":{"Test":["NONE"]}`, `"Labels":{"k":"v"}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("imageConfigOf = %s, missing %s", b, want)
		}
	}
	if strings.Contains(string(b), "dropped") {
		t.Errorf("imageConfigOf = %s kept MacAddress", b)
	}
}

// containerEvents collects the container and image events of e.
func containerEvents(t *testing.T, e *Engine) func() []string {
	t.Helper()
	_, live, cancel, err := e.SubscribeToEvents(context.Background(), time.Time{}, time.Time{}, filters.NewArgs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return func() []string {
		var out []string
		for {
			select {
			case <-live.Ready():
				batch, _ := live.Take(nil)
				for _, m := range batch {
					out = append(out, m.Type+" "+m.Action)
				}
			case <-time.After(200 * time.Millisecond):
				return out
			}
		}
	}
}

// TestEngineCpDiffCommitExport runs the archive endpoints against a real
// container, stopped and then running, and commits the result.
func TestEngineCpDiffCommitExport(t *testing.T) {
	e, _, _ := runEngine(t)
	ctx := context.Background()
	id := create(t, e, "cp1", types.Config{Cmd: []string{"sleep", "300"}}, nil)
	events := containerEvents(t, e)

	// Stopped: the rootfs is mounted for the copy only.
	payload := tarOf(t, reg("srv/dir/a", "hello\n"), reg("srv/dir/sub/b", "b\n"))
	if err := e.ContainerExtractToDir(ctx, "cp1", "/", types.ExtractOptions{NoOverwriteDirNonDir: true}, bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}
	st, err := e.ContainerStatPath(ctx, "cp1", "/srv/dir/a")
	if err != nil || st.Name != "a" || st.Size != 6 || st.Mode != 0o644 {
		t.Errorf("stat /srv/dir/a = %+v, %v", st, err)
	}
	if _, err := e.ContainerStatPath(ctx, "cp1", "/nope"); errdefs.KindOf(err) != errdefs.ErrNotFound || err.Error() != "Could not find the file /nope in container cp1" {
		t.Errorf("stat /nope = %v", err)
	}
	if _, err := e.ContainerStatPath(ctx, "nosuch", "/"); errdefs.KindOf(err) != errdefs.ErrNotFound {
		t.Errorf("stat in a missing container = %v", err)
	}
	changes, err := e.ContainerChanges(ctx, "cp1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changeStrings(changes), []string{"A /srv", "A /srv/dir", "A /srv/dir/a", "A /srv/dir/sub", "A /srv/dir/sub/b"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}

	// Running: the same through the live rootfs.
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.ContainerExtractToDir(ctx, id, "/tmp", types.ExtractOptions{}, bytes.NewReader(tarOf(t, reg("live", "running\n")))); err != nil {
		t.Fatal(err)
	}
	rc, st, err := e.ContainerArchivePath(ctx, id, "/srv/dir")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := skifftest.TarNames(t, b); !slices.Equal(got, []string{"dir/", "dir/a", "dir/sub/", "dir/sub/b"}) || !st.Mode.IsDir() {
		t.Errorf("archive of /srv/dir = %q (stat %+v)", got, st)
	}
	changes, err = e.ContainerChanges(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := changeStrings(changes)
	if !slices.Contains(got, "A /tmp/live") || !slices.Contains(got, "A /srv/dir/a") {
		t.Errorf("changes of the running container = %q", got)
	}
	for _, c := range got {
		if strings.HasPrefix(c, "A /etc/host") || strings.HasPrefix(c, "A /proc") || strings.HasPrefix(c, "A /dev") || c == "C /etc" {
			t.Errorf("changes show the runtime's mount point %q", c)
		}
	}

	imgID, err := e.CommitContainer(ctx, id, types.CommitOptions{
		Repo: "docker.io/library/committed", Tag: "1", Comment: "msg", Author: "me", Pause: true, Changes: []string{`CMD ["sh"]`},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := e.images.Get("committed:1")
	if err != nil || img.ID != imgID {
		t.Fatalf("committed:1 = %v, %v; want %s", img, err, imgID)
	}
	parent, _ := e.images.Get("busybox")
	if img.Parent != parent.ID || len(img.ChainIDs) != len(parent.ChainIDs)+1 || img.Config.Comment != "msg" || img.Config.Author != "me" ||
		!slices.Equal(img.Config.Config.Cmd, []string{"sh"}) || img.Config.Container != id {
		t.Errorf("committed image = %+v", img.Config)
	}
	if h := img.Config.History[len(img.Config.History)-1]; h.CreatedBy != "sleep 300" || h.Comment != "msg" || h.EmptyLayer {
		t.Errorf("history entry = %+v", h)
	}
	var layerTar bytes.Buffer
	if err := e.layers.WriteTar(ctx, img.ChainIDs[len(img.ChainIDs)-1], &layerTar); err != nil {
		t.Fatal(err)
	}
	layerNames := skifftest.TarNames(t, layerTar.Bytes())
	if !slices.Contains(layerNames, "srv/dir/a") || !slices.Contains(layerNames, "tmp/live") {
		t.Errorf("committed layer %q lacks the copied files", layerNames)
	}
	for _, n := range layerNames {
		if strings.HasPrefix(n, "etc/host") || strings.HasPrefix(n, "proc") || strings.HasPrefix(n, "dev") || strings.HasPrefix(n, "sys") || n == "etc/" {
			t.Errorf("committed layer has the runtime's mount point %s", n)
		}
	}
	ev := events()
	for _, want := range []string{"container extract-to-dir", "container archive-path", "container pause", "container unpause", "image tag", "container commit"} {
		if !slices.Contains(ev, want) {
			t.Errorf("events %q lack %q", ev, want)
		}
	}
	if err := e.ContainerKill(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, id, types.WaitConditionNotRunning)
	// Exited: the rootfs is mounted for each copy only. The exit handler
	// unmounts it under the container's lock, after waiters hear of it.
	c, _ := e.get(id)
	c.Lock()
	c.Unlock()
	rootfs := filepath.Join(e.containerDir(id), "rootfs")
	if mounted, _ := isMountPoint(rootfs); mounted {
		t.Fatalf("rootfs of an exited container is mounted")
	}
	if err := e.ContainerExtractToDir(ctx, id, "/tmp", types.ExtractOptions{}, bytes.NewReader(tarOf(t, reg("stopped", "x")))); err != nil {
		t.Fatal(err)
	}
	if st, err := e.ContainerStatPath(ctx, id, "/tmp/stopped"); err != nil || st.Size != 1 {
		t.Errorf("stat of a file copied into an exited container = %+v, %v", st, err)
	}
	if mounted, _ := isMountPoint(rootfs); mounted {
		t.Errorf("rootfs of an exited container left mounted after cp")
	}

	// The new image carries the copied file, and export shows it.
	if _, err := e.ContainerCreate(ctx, "cp2", &types.CreateRequest{Config: &types.Config{Image: "committed:1"}, HostConfig: &types.HostConfig{}}); err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	if err := e.ContainerExport(ctx, "cp2", &exp); err != nil {
		t.Fatal(err)
	}
	files := skifftest.TarContents(t, exp.Bytes())
	if files["srv/dir/a"] != "hello\n" || files["tmp/live"] != "running\n" {
		t.Errorf("export of a container of the committed image lacks the copied files")
	}
	if _, ok := files["bin/busybox"]; !ok {
		t.Errorf("export lacks bin/busybox")
	}
	changes, err = e.ContainerChanges(ctx, "cp2")
	if err != nil || changes != nil {
		t.Errorf("changes of a fresh container = %v, %v; want none", changes, err)
	}

	// A commit without changes to the file system adds no layer.
	img2ID, err := e.CommitContainer(ctx, "cp2", types.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img2, _ := e.images.Get(img2ID)
	if len(img2.ChainIDs) != len(img.ChainIDs) || !img2.Config.History[len(img2.Config.History)-1].EmptyLayer {
		t.Errorf("empty commit: %d layers (want %d), history %+v", len(img2.ChainIDs), len(img.ChainIDs), img2.Config.History)
	}
	// Nor does one of a container that ran but changed nothing but the
	// runtime's mount points.
	idle := create(t, e, "idle", types.Config{Cmd: []string{"true"}}, nil)
	if err := e.ContainerStart(ctx, idle); err != nil {
		t.Fatal(err)
	}
	waitExit(t, e, idle, types.WaitConditionNotRunning)
	if changes, err := e.ContainerChanges(ctx, idle); err != nil || changes != nil {
		t.Errorf("changes of a container that changed nothing = %q, %v", changeStrings(changes), err)
	}
	img3ID, err := e.CommitContainer(ctx, idle, types.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img3, _ := e.images.Get(img3ID); len(img3.ChainIDs) != len(parent.ChainIDs) {
		t.Errorf("commit of a container that changed nothing has %d layers, want %d", len(img3.ChainIDs), len(parent.ChainIDs))
	}
	// Deletions travel as whiteouts: the committed image lacks the file.
	del := create(t, e, "del", types.Config{Cmd: []string{"sh", "-c", "rm /etc/group && rm -r /root && mkdir /root && touch /root/new"}}, nil)
	if err := e.ContainerStart(ctx, del); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, e, del, types.WaitConditionNotRunning); code != 0 {
		t.Fatalf("deleting container exited %d", code)
	}
	changes, err = e.ContainerChanges(ctx, del)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changeStrings(changes), []string{"C /etc", "D /etc/group", "D /root", "A /root/new"}; !slices.Equal(got, want) {
		t.Errorf("changes after deletions = %q, want %q", got, want)
	}
	delImg, err := e.CommitContainer(ctx, del, types.CommitOptions{Repo: "deleted"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ContainerCreate(ctx, "del2", &types.CreateRequest{Config: &types.Config{Image: delImg}, HostConfig: &types.HostConfig{}}); err != nil {
		t.Fatal(err)
	}
	exp.Reset()
	if err := e.ContainerExport(ctx, "del2", &exp); err != nil {
		t.Fatal(err)
	}
	files = skifftest.TarContents(t, exp.Bytes())
	if _, ok := files["etc/group"]; ok {
		t.Errorf("the committed image still has /etc/group")
	}
	if _, ok := files["root/new"]; !ok {
		t.Errorf("the committed image lacks /root/new")
	}
	if _, ok := files["etc/passwd"]; !ok {
		t.Errorf("the committed image lost /etc/passwd")
	}

	if _, err := e.CommitContainer(ctx, "cp2", types.CommitOptions{Repo: "Bad Name"}); errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
		t.Errorf("commit with a bad repository = %v", err)
	}
	if _, err := e.CommitContainer(ctx, "cp2", types.CommitOptions{Changes: []string{"RUN x"}}); errdefs.KindOf(err) != errdefs.ErrInvalidParameter {
		t.Errorf("commit with RUN = %v", err)
	}
}

// TestEngineCpSymlinkSwapRace is CVE-2018-15664 with a real container: its
// process keeps swapping a directory for a symlink to a host directory
// while docker cp copies in and out of that path. The host directory must
// never be read or written.
func TestEngineCpSymlinkSwapRace(t *testing.T) {
	e, _, _ := runEngine(t)
	ctx := context.Background()
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := "mkdir -p /tmp/real; echo ctr > /tmp/real/secret; touch /tmp/ready; " +
		"while :; do mv /tmp/real /tmp/swap; mv /tmp/swap /tmp/real; ln -s " + host + " /tmp/swap; rm /tmp/swap; done"
	id := create(t, e, "swapper", types.Config{Cmd: []string{"sh", "-c", script}}, nil)
	if err := e.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := e.ContainerStatPath(ctx, id, "/tmp/ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	payload := tarOf(t, reg("secret", "pwned\n"), reg("new", "pwned\n"))
	sawLink, sawDir := false, false
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		for _, p := range []string{"/tmp/swap", "/tmp/swap/", "/tmp/swap/secret", "/tmp/swap/."} {
			rc, st, err := e.ContainerArchivePath(ctx, id, p)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if st.Mode&os.ModeSymlink != 0 {
				sawLink = true
			} else if st.Mode.IsDir() {
				sawDir = true
			}
			if bytes.Contains(b, []byte("host secret")) {
				t.Fatalf("GET archive %s returned the host file", p)
			}
		}
		e.ContainerExtractToDir(ctx, id, "/tmp/swap", types.ExtractOptions{}, bytes.NewReader(payload))
		e.ContainerExtractToDir(ctx, id, "/tmp", types.ExtractOptions{}, bytes.NewReader(tarOf(t, reg("swap/secret", "pwned\n"))))
	}
	if !sawLink || !sawDir {
		t.Logf("the copies saw a symlink: %v, a directory: %v", sawLink, sawDir)
	}
	entries, _ := os.ReadDir(host)
	if b, err := os.ReadFile(secret); err != nil || string(b) != "host secret\n" || len(entries) != 1 {
		t.Errorf("host directory changed: secret %q (%v), %d entries", b, err, len(entries))
	}
}
