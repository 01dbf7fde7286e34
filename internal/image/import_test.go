package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"skiffd/internal/errdefs"
)

func TestImport(t *testing.T) {
	st, fl, _ := newStore(t)
	rootfs := layerTar(t, map[string]string{"bin/busybox": "bb"})
	ref := mustNamed(t, "trace-imported:2")
	before := time.Now().UTC().Add(-time.Second)
	img, err := st.Import(context.Background(), bytes.NewReader(gzipped(t, rootfs)), ImportOptions{
		Ref:           &ref,
		Changes:       []string{`CMD ["sh"]`},
		DockerVersion: "28.2.2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != sha(img.RawConfig) {
		t.Errorf("ID %s is not the digest of the config", img.ID)
	}
	if got := mustGet(t, st, "trace-imported:2").ID; got != img.ID {
		t.Errorf("tag points at %s, want %s", got, img.ID)
	}
	c := img.Config
	if c.Comment != "Imported from -" || c.OS != "linux" || c.Architecture != runtime.GOARCH || c.DockerVersion != "28.2.2" {
		t.Errorf("config = comment %q os %q arch %q version %q", c.Comment, c.OS, c.Architecture, c.DockerVersion)
	}
	if c.Created == nil || c.Created.Before(before) {
		t.Errorf("created = %v, want now", c.Created)
	}
	if c.RootFS == nil || !slices.Equal(c.RootFS.DiffIDs, []string{sha(rootfs)}) || c.RootFS.Type != "layers" {
		t.Errorf("rootfs = %+v, want the layer %s", c.RootFS, sha(rootfs))
	}
	if len(c.History) != 1 || c.History[0].Comment != "Imported from -" || c.History[0].CreatedBy != "" || !c.History[0].Created.Equal(*c.Created) {
		t.Errorf("history = %+v", c.History)
	}
	if c.Config == nil || !slices.Equal(c.Config.Cmd, []string{"sh"}) {
		t.Errorf("config.Cmd = %+v, want [sh]", c.Config)
	}
	// The raw config carries the run config in full, as dockerd writes it.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(img.RawConfig, &raw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw["config"]), `"Hostname":""`) {
		t.Errorf("raw config = %s", raw["config"])
	}

	withMsg, err := st.Import(context.Background(), bytes.NewReader(rootfs), ImportOptions{Message: "imported by trace", Platform: "linux/arm64/v8"})
	if err != nil {
		t.Fatal(err)
	}
	if c := withMsg.Config; c.Comment != "imported by trace" || c.History[0].Comment != "imported by trace" || c.Architecture != "arm64" || c.Variant != "v8" {
		t.Errorf("config = %+v", c)
	}
	if n := len(fl.chains()); n != 1 {
		t.Errorf("%d layers, want the one shared rootfs", n)
	}

	_, err = st.Import(context.Background(), bytes.NewReader(rootfs), ImportOptions{Changes: []string{"RUN echo hi"}})
	if !errors.Is(err, errdefs.ErrInvalidParameter) || err.Error() != "run is not a valid change command" {
		t.Errorf("Import(RUN) = %v, want dockerd's error", err)
	}
	_, err = st.Import(context.Background(), bytes.NewReader(rootfs), ImportOptions{Platform: "windows/amd64"})
	if !errors.Is(err, errdefs.ErrInvalidParameter) {
		t.Errorf("Import(windows) = %v, want InvalidParameter", err)
	}
	_, err = st.Import(context.Background(), strings.NewReader("not a tar at all, long enough to fill a header block? no"), ImportOptions{})
	if err == nil {
		t.Error("Import(non-tar) succeeded")
	}
	if n := len(st.List()); n != 2 {
		t.Errorf("%d images after failed imports, want 2", n)
	}
}

func TestApplyChanges(t *testing.T) {
	base := &ContainerConfig{Env: []string{"PATH=/usr/bin", "HOME=/root"}, WorkingDir: "/srv", Cmd: []string{"old"}}
	tests := []struct {
		name    string
		changes []string
		check   func(c *ContainerConfig) bool
	}{
		{"cmd json", []string{`CMD ["sh", "-c", "x"]`}, func(c *ContainerConfig) bool { return slices.Equal(c.Cmd, []string{"sh", "-c", "x"}) }},
		{"cmd shell", []string{"CMD echo $HOME"}, func(c *ContainerConfig) bool { return slices.Equal(c.Cmd, []string{"/bin/sh", "-c", "echo $HOME"}) }},
		{"cmd lower case", []string{"cmd top"}, func(c *ContainerConfig) bool { return slices.Equal(c.Cmd, []string{"/bin/sh", "-c", "top"}) }},
		{"entrypoint clears cmd", []string{`ENTRYPOINT ["/init"]`}, func(c *ContainerConfig) bool {
			return slices.Equal(c.Entrypoint, []string{"/init"}) && c.Cmd == nil
		}},
		{"entrypoint keeps a cmd set", []string{"CMD run", "ENTRYPOINT /init --x"}, func(c *ContainerConfig) bool {
			return slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c", "/init --x"}) && slices.Equal(c.Cmd, []string{"/bin/sh", "-c", "run"})
		}},
		{"env pairs", []string{`ENV A=1 B="two words" HOME=/home/x C=$HOME`}, func(c *ContainerConfig) bool {
			return slices.Equal(c.Env, []string{"PATH=/usr/bin", "HOME=/home/x", "A=1", "B=two words", "C=/root"})
		}},
		{"env legacy", []string{"ENV GREETING hello  big world"}, func(c *ContainerConfig) bool {
			return slices.Contains(c.Env, "GREETING=hello  big world")
		}},
		{"env then expand", []string{"ENV X=1", "ENV Y=${X}2 Z=${NOPE:-dflt} Q='$X'"}, func(c *ContainerConfig) bool {
			return slices.Contains(c.Env, "Y=12") && slices.Contains(c.Env, "Z=dflt") && slices.Contains(c.Env, "Q=$X")
		}},
		{"workdir relative", []string{"WORKDIR app", "WORKDIR ../x"}, func(c *ContainerConfig) bool { return c.WorkingDir == "/srv/x" }},
		{"workdir absolute", []string{"WORKDIR $HOME/w"}, func(c *ContainerConfig) bool { return c.WorkingDir == "/root/w" }},
		{"user", []string{"USER nobody:nogroup"}, func(c *ContainerConfig) bool { return c.User == "nobody:nogroup" }},
		{"expose", []string{"EXPOSE 80 53/udp 8000-8001/TCP"}, func(c *ContainerConfig) bool {
			return reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
		}},
		{"label", []string{`LABEL a=b "c d"="e f"`, "LABEL legacy value here"}, func(c *ContainerConfig) bool {
			return reflect.DeepEqual(c.Labels, map[string]string{"a": "b", "c d": "e f", "legacy": "value here"})
		}},
		{"volume json", []string{`VOLUME ["/data", "/logs"]`}, func(c *ContainerConfig) bool {
			return reflect.DeepEqual(c.Volumes, map[string]struct{}{"/data": {}, "/logs": {}})
		}},
		{"volume words", []string{"VOLUME /a /b"}, func(c *ContainerConfig) bool {
			return reflect.DeepEqual(c.Volumes, map[string]struct{}{"/a": {}, "/b": {}})
		}},
		{"stopsignal", []string{"STOPSIGNAL SIGQUIT"}, func(c *ContainerConfig) bool { return c.StopSignal == "SIGQUIT" }},
		{"stopsignal number", []string{"STOPSIGNAL 9"}, func(c *ContainerConfig) bool { return c.StopSignal == "9" }},
		{"healthcheck cmd", []string{"HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/"}, func(c *ContainerConfig) bool {
			h := c.Healthcheck
			return h != nil && slices.Equal(h.Test, []string{"CMD-SHELL", "curl -f http://x/"}) && h.Interval == 5*time.Second && h.Retries == 3
		}},
		{"healthcheck exec", []string{`HEALTHCHECK CMD ["/check", "-q"]`}, func(c *ContainerConfig) bool {
			return slices.Equal(c.Healthcheck.Test, []string{"CMD", "/check", "-q"})
		}},
		{"healthcheck none", []string{"HEALTHCHECK NONE"}, func(c *ContainerConfig) bool { return slices.Equal(c.Healthcheck.Test, []string{"NONE"}) }},
		{"onbuild", []string{"ONBUILD RUN make"}, func(c *ContainerConfig) bool { return slices.Equal(c.OnBuild, []string{"RUN make"}) }},
		{"multi-line with comment and continuation", []string{"# note\nENV A=1 \\\n  B=2\n\nUSER u"}, func(c *ContainerConfig) bool {
			return slices.Contains(c.Env, "A=1") && slices.Contains(c.Env, "B=2") && c.User == "u"
		}},
		{"nothing", nil, func(c *ContainerConfig) bool { return reflect.DeepEqual(c, base) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyChanges(base, tt.changes)
			if err != nil {
				t.Fatalf("ApplyChanges(%q) = %v", tt.changes, err)
			}
			if !tt.check(got) {
				t.Errorf("ApplyChanges(%q) = %+v", tt.changes, got)
			}
			if !slices.Equal(base.Env, []string{"PATH=/usr/bin", "HOME=/root"}) || base.WorkingDir != "/srv" || base.Labels != nil {
				t.Fatalf("ApplyChanges modified its input: %+v", base)
			}
		})
	}

	errTests := []struct {
		changes []string
		want    string
	}{
		{[]string{"RUN make"}, "run is not a valid change command"},
		{[]string{"ENV A=1", "FROM busybox"}, "from is not a valid change command"},
		{[]string{"SHELL [\"/bin/bash\"]"}, "shell is not a valid change command"},
		{[]string{"ENV"}, "ENV requires at least one argument"},
		{[]string{"ENV A=1 B"}, `Syntax error - can't find = in "B". Must be of the form: name=value`},
		{[]string{"ENV onlykey"}, "ENV must have two arguments"},
		{[]string{"ENV A=\"open"}, "unexpected end of statement while looking for matching double-quote"},
		{[]string{"EXPOSE 80/foo"}, "invalid proto: foo"},
		{[]string{"EXPOSE http"}, "invalid containerPort: http"},
		{[]string{"EXPOSE 70000"}, "invalid containerPort: 70000"},
		{[]string{"STOPSIGNAL SIGNOPE"}, "Invalid signal: SIGNOPE"},
		{[]string{`VOLUME [""]`}, "VOLUME specified can not be an empty string"},
		{[]string{"HEALTHCHECK NONE --x"}, "HEALTHCHECK NONE takes no arguments"},
		{[]string{"HEALTHCHECK --interval=1s NONE"}, "HEALTHCHECK NONE takes no arguments"},
		{[]string{"HEALTHCHECK PING x"}, `Unknown type "PING" in HEALTHCHECK (try CMD)`},
		{[]string{"ONBUILD ONBUILD RUN x"}, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"},
		{[]string{"ONBUILD FROM x"}, "FROM isn't allowed as an ONBUILD trigger"},
	}
	for _, tt := range errTests {
		t.Run("err "+strings.Join(tt.changes, ";"), func(t *testing.T) {
			_, err := ApplyChanges(base, tt.changes)
			if !errors.Is(err, errdefs.ErrInvalidParameter) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ApplyChanges(%q) = %v, want InvalidParameter %q", tt.changes, err, tt.want)
			}
		})
	}
}
