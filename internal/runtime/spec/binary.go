package spec

import (
	"skiffd/internal/binwire"
)

// The binary form of a spec, for the shim's messages to init and the exec
// helper (see package binwire): every field, in declaration order; slices
// and pointers with a presence byte, so that nil stays nil. A field added
// to a type must be added here too (TestBinaryRoundTrip fills every
// field and fails otherwise).

// AppendBinary appends s's binary form to e.
func (s *Spec) AppendBinary(e *binwire.Encoder) {
	e.Int(int64(s.Version))
	e.String(s.ID)
	e.String(s.Root)
	e.Bool(s.ReadonlyRoot)
	e.String(s.Hostname)
	e.String(s.Domainname)
	s.Process.AppendBinary(e)
	binwire.AppendSlice(e, s.Mounts, func(m Mount) {
		e.String(m.Destination)
		e.String(m.Type)
		e.String(m.Source)
		e.Strings(m.Options)
	})
	e.Strings(s.MaskedPaths)
	e.Strings(s.ReadonlyPaths)
	binwire.AppendSlice(e, s.Devices, func(d Device) {
		e.String(d.Path)
		e.String(d.Type)
		for _, v := range []uint32{d.Major, d.Minor, d.Mode, d.UID, d.GID} {
			e.Uint(uint64(v))
		}
	})
	binwire.AppendSlice(e, s.Namespaces, func(n Namespace) {
		e.String(n.Type)
		e.String(n.Path)
	})
	e.StringMap(s.Sysctl)
	e.Bool(s.Cgroup != nil)
	if c := s.Cgroup; c != nil {
		e.String(c.Parent)
		r := &c.Resources
		for _, v := range []int64{r.Memory, r.MemorySwap, r.MemoryReservation, r.NanoCPUs, r.CPUShares, r.CPUQuota, r.CPUPeriod} {
			e.Int(v)
		}
		e.String(r.CpusetCpus)
		e.String(r.CpusetMems)
		for _, v := range []int64{r.CPURealtimePeriod, r.CPURealtimeRuntime, r.PidsLimit} {
			e.Int(v)
		}
		e.Uint(uint64(r.BlkioWeight))
		e.Bool(r.MemorySwappiness != nil)
		if r.MemorySwappiness != nil {
			e.Int(*r.MemorySwappiness)
		}
		e.Bool(r.OomKillDisable)
		binwire.AppendSlice(e, r.Devices, func(d DeviceRule) {
			e.Bool(d.Allow)
			e.String(d.Type)
			e.Int(d.Major)
			e.Int(d.Minor)
			e.String(d.Access)
		})
		binwire.AppendSlice(e, r.BlkioThrottle, func(t ThrottleDevice) {
			e.String(t.Kind)
			e.Int(t.Major)
			e.Int(t.Minor)
			e.Uint(t.Rate)
		})
		binwire.AppendSlice(e, r.BlkioWeightDevice, func(w WeightDevice) {
			e.Int(w.Major)
			e.Int(w.Minor)
			e.Uint(uint64(w.Weight))
		})
	}
	s.Seccomp.AppendBinary(e)
	e.String(s.Log.Path)
	e.Int(s.Log.MaxSize)
	e.Int(int64(s.Log.MaxFiles))
	e.Bool(s.Log.Compress)
	e.StringMap(s.Log.Attrs)
	e.Bool(s.Log.Syslog != nil)
	if l := s.Log.Syslog; l != nil {
		for _, v := range []string{l.Proto, l.Address, l.Format, l.Tag, l.Hostname, l.TLSCA, l.TLSCert, l.TLSKey} {
			e.String(v)
		}
		e.Int(int64(l.Facility))
		e.Bool(l.TLSSkipVerify)
	}
	e.Bool(s.Log.Gelf != nil)
	if g := s.Log.Gelf; g != nil {
		for _, v := range []string{g.Proto, g.Address, g.Compression, g.Host} {
			e.String(v)
		}
		e.Int(int64(g.Level))
		e.StringMap(g.Extra)
	}
	e.Bool(s.Log.Fluentd != nil)
	if f := s.Log.Fluentd; f != nil {
		for _, v := range []string{f.Network, f.Address, f.Tag} {
			e.String(v)
		}
		e.StringMap(f.Record)
		for _, v := range []bool{f.SubSecond, f.RequestAck, f.Async} {
			e.Bool(v)
		}
		for _, v := range []int64{f.BufferLimit, f.RetryWait, int64(f.MaxRetries), f.ReconnectInterval, f.WriteTimeout, f.ReadTimeout} {
			e.Int(v)
		}
	}
	e.Bool(s.Log.Journald != nil)
	if j := s.Log.Journald; j != nil {
		e.String(j.Socket)
		e.StringMap(j.Vars)
	}
	e.StringMap(s.Annotations)
}

// DecodeBinary reads what AppendBinary wrote; d.Err says whether it could.
func (s *Spec) DecodeBinary(d *binwire.Decoder) {
	s.Version = int(d.Int())
	s.ID = d.String()
	s.Root = d.String()
	s.ReadonlyRoot = d.Bool()
	s.Hostname = d.String()
	s.Domainname = d.String()
	s.Process.DecodeBinary(d)
	s.Mounts = binwire.DecodeSlice(d, func() Mount {
		return Mount{Destination: d.String(), Type: d.String(), Source: d.String(), Options: d.Strings()}
	})
	s.MaskedPaths = d.Strings()
	s.ReadonlyPaths = d.Strings()
	s.Devices = binwire.DecodeSlice(d, func() Device {
		dev := Device{Path: d.String(), Type: d.String()}
		for _, p := range []*uint32{&dev.Major, &dev.Minor, &dev.Mode, &dev.UID, &dev.GID} {
			*p = uint32(d.Uint())
		}
		return dev
	})
	s.Namespaces = binwire.DecodeSlice(d, func() Namespace { return Namespace{Type: d.String(), Path: d.String()} })
	s.Sysctl = d.StringMap()
	if d.Bool() {
		c := &Cgroup{Parent: d.String()}
		r := &c.Resources
		for _, p := range []*int64{&r.Memory, &r.MemorySwap, &r.MemoryReservation, &r.NanoCPUs, &r.CPUShares, &r.CPUQuota, &r.CPUPeriod} {
			*p = d.Int()
		}
		r.CpusetCpus = d.String()
		r.CpusetMems = d.String()
		for _, p := range []*int64{&r.CPURealtimePeriod, &r.CPURealtimeRuntime, &r.PidsLimit} {
			*p = d.Int()
		}
		r.BlkioWeight = uint16(d.Uint())
		if d.Bool() {
			v := d.Int()
			r.MemorySwappiness = &v
		}
		r.OomKillDisable = d.Bool()
		r.Devices = binwire.DecodeSlice(d, func() DeviceRule {
			return DeviceRule{Allow: d.Bool(), Type: d.String(), Major: d.Int(), Minor: d.Int(), Access: d.String()}
		})
		r.BlkioThrottle = binwire.DecodeSlice(d, func() ThrottleDevice {
			return ThrottleDevice{Kind: d.String(), Major: d.Int(), Minor: d.Int(), Rate: d.Uint()}
		})
		r.BlkioWeightDevice = binwire.DecodeSlice(d, func() WeightDevice {
			return WeightDevice{Major: d.Int(), Minor: d.Int(), Weight: uint16(d.Uint())}
		})
		s.Cgroup = c
	}
	s.Seccomp = DecodeSeccompBinary(d)
	s.Log.Path = d.String()
	s.Log.MaxSize = d.Int()
	s.Log.MaxFiles = int(d.Int())
	s.Log.Compress = d.Bool()
	s.Log.Attrs = d.StringMap()
	if d.Bool() {
		l := &Syslog{}
		for _, p := range []*string{&l.Proto, &l.Address, &l.Format, &l.Tag, &l.Hostname, &l.TLSCA, &l.TLSCert, &l.TLSKey} {
			*p = d.String()
		}
		l.Facility = int(d.Int())
		l.TLSSkipVerify = d.Bool()
		s.Log.Syslog = l
	}
	if d.Bool() {
		g := &Gelf{}
		for _, p := range []*string{&g.Proto, &g.Address, &g.Compression, &g.Host} {
			*p = d.String()
		}
		g.Level = int(d.Int())
		g.Extra = d.StringMap()
		s.Log.Gelf = g
	}
	if d.Bool() {
		f := &Fluentd{}
		for _, p := range []*string{&f.Network, &f.Address, &f.Tag} {
			*p = d.String()
		}
		f.Record = d.StringMap()
		for _, p := range []*bool{&f.SubSecond, &f.RequestAck, &f.Async} {
			*p = d.Bool()
		}
		var maxRetries int64
		for _, p := range []*int64{&f.BufferLimit, &f.RetryWait, &maxRetries, &f.ReconnectInterval, &f.WriteTimeout, &f.ReadTimeout} {
			*p = d.Int()
		}
		f.MaxRetries = int(maxRetries)
		s.Log.Fluentd = f
	}
	if d.Bool() {
		s.Log.Journald = &Journald{Socket: d.String(), Vars: d.StringMap()}
	}
	s.Annotations = d.StringMap()
}

// AppendBinary appends p's binary form to e.
func (p *Process) AppendBinary(e *binwire.Encoder) {
	e.Strings(p.Args)
	e.Strings(p.Env)
	e.String(p.Cwd)
	e.Bool(p.Init)
	e.Bool(p.CreateCwd)
	e.String(p.User)
	e.Strings(p.AdditionalGroups)
	e.Bool(p.Terminal)
	e.Uint(uint64(p.ConsoleHeight))
	e.Uint(uint64(p.ConsoleWidth))
	e.Bool(p.OpenStdin)
	e.Bool(p.StdinOnce)
	e.Strings(p.Capabilities)
	e.Bool(p.NoNewPrivileges)
	binwire.AppendSlice(e, p.Rlimits, func(r Rlimit) {
		e.String(r.Type)
		e.Uint(r.Hard)
		e.Uint(r.Soft)
	})
	e.Bool(p.OOMScoreAdj != nil)
	if p.OOMScoreAdj != nil {
		e.Int(int64(*p.OOMScoreAdj))
	}
}

// DecodeBinary reads what AppendBinary wrote.
func (p *Process) DecodeBinary(d *binwire.Decoder) {
	p.Args = d.Strings()
	p.Env = d.Strings()
	p.Cwd = d.String()
	p.Init = d.Bool()
	p.CreateCwd = d.Bool()
	p.User = d.String()
	p.AdditionalGroups = d.Strings()
	p.Terminal = d.Bool()
	p.ConsoleHeight = uint16(d.Uint())
	p.ConsoleWidth = uint16(d.Uint())
	p.OpenStdin = d.Bool()
	p.StdinOnce = d.Bool()
	p.Capabilities = d.Strings()
	p.NoNewPrivileges = d.Bool()
	p.Rlimits = binwire.DecodeSlice(d, func() Rlimit { return Rlimit{Type: d.String(), Hard: d.Uint(), Soft: d.Uint()} })
	if d.Bool() {
		v := int(d.Int())
		p.OOMScoreAdj = &v
	}
}

// AppendBinary appends the filter (nil: none) to e, 8 bytes an
// instruction as in its JSON form.
func (s *Seccomp) AppendBinary(e *binwire.Encoder) {
	e.Bool(s != nil)
	if s == nil {
		return
	}
	e.Bool(s.Filter != nil)
	e.Uint(uint64(8 * len(s.Filter)))
	e.B = appendProgram(e.B, s.Filter)
}

// DecodeSeccompBinary reads what Seccomp.AppendBinary wrote.
func DecodeSeccompBinary(d *binwire.Decoder) *Seccomp {
	if !d.Bool() {
		return nil
	}
	s := &Seccomp{}
	hasFilter := d.Bool()
	prog, ok := decodeProgram(d.Bytes())
	if !ok {
		d.Fail() // not whole instructions: not from AppendBinary
		return s
	}
	if hasFilter {
		s.Filter = prog
	}
	return s
}
