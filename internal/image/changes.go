package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"skiffd/internal/errdefs"
	"skiffd/internal/signal"
)

// validChanges are the Dockerfile instructions that "docker import -c" and
// "docker commit -c" accept (moby's validCommitCommands).
var validChanges = map[string]bool{
	"cmd": true, "entrypoint": true, "healthcheck": true, "env": true, "expose": true, "label": true,
	"onbuild": true, "stopsignal": true, "user": true, "volume": true, "workdir": true,
}

// defaultShell is what shell-form commands run under on Linux.
var defaultShell = []string{"/bin/sh", "-c"}

// ApplyChanges returns a copy of cfg with the Dockerfile instructions in
// changes applied, as dockerd's import and commit apply their "changes"
// parameter. Each element may hold several lines; blank lines and
// "#" comments are skipped and a trailing backslash continues a line.
// Shell-form CMD and ENTRYPOINT run under cfg's Shell or /bin/sh -c, an
// ENTRYPOINT clears a CMD the changes did not set, and $VAR and ${VAR}
// expand from the config's environment in ENV, LABEL, EXPOSE, VOLUME,
// USER, WORKDIR and STOPSIGNAL. An instruction outside those allowed is
// refused before anything is applied with dockerd's
// "run is not a valid change command". Errors are errdefs.InvalidParameter.
func ApplyChanges(cfg *ContainerConfig, changes []string) (*ContainerConfig, error) {
	out := copyContainerConfig(cfg)
	lines := changeLines(changes)
	for _, l := range lines {
		if !validChanges[l.instr] {
			return nil, errdefs.InvalidParameter(fmt.Errorf("%s is not a valid change command", l.instr))
		}
	}
	st := &changeState{cfg: out}
	for _, l := range lines {
		if err := st.apply(l); err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
	}
	return out, nil
}

func copyContainerConfig(c *ContainerConfig) *ContainerConfig {
	if c == nil {
		return &ContainerConfig{}
	}
	out := *c
	out.Env = slices.Clone(c.Env)
	out.Cmd = slices.Clone(c.Cmd)
	out.Entrypoint = slices.Clone(c.Entrypoint)
	out.OnBuild = slices.Clone(c.OnBuild)
	out.Shell = slices.Clone(c.Shell)
	out.ExposedPorts = maps.Clone(c.ExposedPorts)
	out.Volumes = maps.Clone(c.Volumes)
	out.Labels = maps.Clone(c.Labels)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		out.Healthcheck = &h
	}
	return &out
}

// changeLine is one instruction: its lower-case name and its arguments.
type changeLine struct {
	instr string
	rest  string
}

func changeLines(changes []string) []changeLine {
	var out []changeLine
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if s == "" {
			return
		}
		instr, rest := s, ""
		if i := strings.IndexAny(s, " \t"); i >= 0 {
			instr, rest = s[:i], s[i+1:]
		}
		out = append(out, changeLine{instr: strings.ToLower(instr), rest: strings.TrimSpace(rest)})
	}
	for _, line := range strings.Split(strings.Join(changes, "\n"), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") {
			continue
		}
		trimmed := strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return out
}

type changeState struct {
	cfg    *ContainerConfig
	cmdSet bool
}

func (st *changeState) apply(l changeLine) error {
	c := st.cfg
	name := strings.ToUpper(l.instr)
	if l.rest == "" && l.instr != "cmd" && l.instr != "entrypoint" {
		return fmt.Errorf("%s requires at least one argument", name)
	}
	switch l.instr {
	case "cmd":
		c.Cmd = st.commandLine(l.rest)
		st.cmdSet = true
	case "entrypoint":
		c.Entrypoint = st.commandLine(l.rest)
		if !st.cmdSet {
			c.Cmd = nil
		}
	case "env":
		kvs, err := nameValues(l.rest, name, c.Env)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			c.Env = setEnv(c.Env, kv[0], kv[1])
		}
	case "label":
		kvs, err := nameValues(l.rest, name, c.Env)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = make(map[string]string)
		}
		for _, kv := range kvs {
			c.Labels[kv[0]] = kv[1]
		}
	case "workdir":
		dir, err := expandWord(l.rest, c.Env)
		if err != nil {
			return err
		}
		if !path.IsAbs(dir) {
			dir = path.Join("/", c.WorkingDir, dir)
		}
		c.WorkingDir = dir
	case "user":
		u, err := expandWord(l.rest, c.Env)
		if err != nil {
			return err
		}
		c.User = u
	case "expose":
		for _, w := range strings.Fields(l.rest) {
			spec, err := expandWord(w, c.Env)
			if err != nil {
				return err
			}
			ports, err := exposedPorts(spec)
			if err != nil {
				return err
			}
			if c.ExposedPorts == nil {
				c.ExposedPorts = make(map[string]struct{})
			}
			for _, p := range ports {
				c.ExposedPorts[p] = struct{}{}
			}
		}
	case "volume":
		words, isJSON := jsonArray(l.rest)
		if !isJSON {
			words = strings.Fields(l.rest)
		}
		for _, w := range words {
			v, err := expandWord(w, c.Env)
			if err != nil {
				return err
			}
			if v = strings.TrimSpace(v); v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			if c.Volumes == nil {
				c.Volumes = make(map[string]struct{})
			}
			c.Volumes[v] = struct{}{}
		}
	case "stopsignal":
		sig, err := expandWord(l.rest, c.Env)
		if err != nil {
			return err
		}
		if _, err := signal.Parse(sig); err != nil {
			return fmt.Errorf("Invalid signal: %s", sig)
		}
		c.StopSignal = sig
	case "healthcheck":
		h, err := parseHealthcheck(l.rest)
		if err != nil {
			return err
		}
		c.Healthcheck = h
	case "onbuild":
		trigger, _, _ := strings.Cut(l.rest, " ")
		switch t := strings.ToUpper(strings.TrimSpace(trigger)); t {
		case "ONBUILD":
			return errors.New("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", t)
		}
		c.OnBuild = append(c.OnBuild, l.rest)
	}
	return nil
}

// commandLine returns the exec form of a CMD or ENTRYPOINT argument: the
// JSON array as given, or the shell form run by the shell.
func (st *changeState) commandLine(rest string) []string {
	if rest == "" {
		return nil
	}
	if args, ok := jsonArray(rest); ok {
		return args
	}
	shell := defaultShell
	if len(st.cfg.Shell) > 0 {
		shell = st.cfg.Shell
	}
	return append(slices.Clone(shell), rest)
}

// jsonArray parses s as a JSON array of strings.
func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

// nameValues parses the arguments of ENV or LABEL: "k=v k2='v 2'" or the
// legacy single pair "k v w" (the value is the rest of the line), with
// quotes removed and variables expanded from env.
func nameValues(rest, instr string, env []string) ([][2]string, error) {
	words, err := splitWords(rest)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", instr)
	}
	var raw [][2]string
	if !strings.Contains(words[0], "=") {
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			return nil, fmt.Errorf("%s must have two arguments", instr)
		}
		raw = append(raw, [2]string{rest[:i], strings.TrimLeft(rest[i:], " \t")})
	} else {
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, fmt.Errorf("Syntax error - can't find = in %q. Must be of the form: name=value", w)
			}
			raw = append(raw, [2]string{k, v})
		}
	}
	out := make([][2]string, 0, len(raw))
	for _, kv := range raw {
		k, err := expandWord(kv[0], env)
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, fmt.Errorf("%s names can not be blank", instr)
		}
		v, err := expandWord(kv[1], env)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// exposedPorts turns an EXPOSE argument ("80", "80/udp", "8000-8002/tcp")
// into ExposedPorts keys ("80/tcp"), as dockerd's port-spec parser does.
func exposedPorts(spec string) ([]string, error) {
	port, proto, ok := strings.Cut(spec, "/")
	if !ok || proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	if i := strings.LastIndexByte(port, ':'); i >= 0 {
		port = port[i+1:]
	}
	lo, hi, isRange := strings.Cut(port, "-")
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end := start
	var err2 error
	if isRange {
		end, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || end < start {
		return nil, fmt.Errorf("invalid containerPort: %s", port)
	}
	out := make([]string, 0, end-start+1)
	for p := start; p <= end; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}

// parseHealthcheck parses "[--flag=value...] NONE" or
// "[--flag=value...] CMD command".
func parseHealthcheck(rest string) (*HealthConfig, error) {
	h := &HealthConfig{}
	flags := 0
	for strings.HasPrefix(rest, "--") {
		word, after, _ := strings.Cut(rest, " ")
		rest = strings.TrimSpace(after)
		name, value, ok := strings.Cut(strings.TrimPrefix(word, "--"), "=")
		if !ok {
			return nil, fmt.Errorf("missing a value on flag: %s", word)
		}
		flags++
		var d *time.Duration
		switch name {
		case "interval":
			d = &h.Interval
		case "timeout":
			d = &h.Timeout
		case "start-period":
			d = &h.StartPeriod
		case "start-interval":
			d = &h.StartInterval
		case "retries":
			n, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("invalid value for --retries: %s", value)
			}
			if n < 0 {
				return nil, fmt.Errorf("--retries cannot be negative (%d)", n)
			}
			h.Retries = n
			continue
		default:
			return nil, fmt.Errorf("unknown flag: %s", name)
		}
		v, err := time.ParseDuration(value)
		if err != nil {
			return nil, fmt.Errorf("invalid value for --%s: %s", name, value)
		}
		if v != 0 && v < time.Millisecond {
			return nil, fmt.Errorf("Interval %q cannot be less than 1ms", "--"+name)
		}
		*d = v
	}
	typ, args, _ := strings.Cut(rest, " ")
	args = strings.TrimSpace(args)
	switch strings.ToUpper(typ) {
	case "NONE":
		if flags > 0 || args != "" {
			return nil, errors.New("HEALTHCHECK NONE takes no arguments")
		}
		return &HealthConfig{Test: []string{"NONE"}}, nil
	case "CMD":
		if args == "" {
			return nil, errors.New("Missing command after HEALTHCHECK CMD")
		}
		if list, ok := jsonArray(args); ok {
			h.Test = append([]string{"CMD"}, list...)
		} else {
			h.Test = []string{"CMD-SHELL", args}
		}
		return h, nil
	default:
		return nil, fmt.Errorf("Unknown type %q in HEALTHCHECK (try CMD)", typ)
	}
}
