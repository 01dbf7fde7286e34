package container

import (
	"slices"
	"strconv"
	"unicode/utf8"

	"skiffd/internal/api/types"
)

// appendSummaries appends the JSON of GET /containers/json, byte for byte
// what json.Encoder writes for list (HTML escaping and the trailing newline
// included), without reflection: listing is the request clients poll most,
// and encoding/json's reflection and sorted map keys were half of its cost
// (issue 13, list rate). TestAppendSummariesMatchesEncodingJSON and its fuzz
// target hold it to encoding/json; a field added to one of the types below
// must be added here too, which the test's field count check catches.
//
// The handler encodes with appendEntries, which splices the pieces
// appendSummary is made of (each summary's own cached once); appendSummaries
// is their whole composition, the one the tests compare to encoding/json.
func appendSummaries(b []byte, list []*types.ContainerSummary) []byte {
	if list == nil {
		return append(b, "null\n"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSummary(b, s)
	}
	return append(b, "]\n"...)
}

func appendSummary(b []byte, s *types.ContainerSummary) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = appendSummaryHead(b, s)
	b = appendString(b, s.Image)
	b = appendSummaryMid(b, s)
	b = appendSizes(b, s.SizeRw, s.SizeRootFs)
	b = appendSummaryLabels(b, s)
	b = appendString(b, s.Status)
	return appendSummaryTail(b, s)
}

// appendEntries is appendSummaries for the engine's list entries, each
// spliced from its summary's cached encoding (encodedSummary): the bytes
// are appendSummaries', and a list allocates nothing per container.
func appendEntries(b []byte, list []types.ContainerListEntry) []byte {
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		en := &list[i]
		enc := en.Cache.Get(func() any { return encodeSummary(en.Summary) }).(*encodedSummary)
		b = enc.append(b, en)
	}
	return append(b, "]\n"...)
}

// encodedSummary is a summary's JSON cut where a list splices in what is
// not the summary's own: the image (the reference, or the image ID when
// the reference names another image now), the sizes and the status.
type encodedSummary struct {
	// b is the head, Image, ImageID, the middle, the labels and the tail,
	// each starting at the offset below; Image and ImageID are quoted.
	b                                 []byte
	image, imageID, mid, labels, tail int
}

func encodeSummary(s *types.ContainerSummary) *encodedSummary {
	e := &encodedSummary{}
	b := appendSummaryHead(make([]byte, 0, 1024), s)
	e.image = len(b)
	b = appendString(b, s.Image)
	e.imageID = len(b)
	b = appendString(b, s.ImageID)
	e.mid = len(b)
	b = appendSummaryMid(b, s)
	e.labels = len(b)
	b = appendSummaryLabels(b, s)
	e.tail = len(b)
	b = appendSummaryTail(b, s)
	e.b = slices.Clip(b)
	return e
}

// append appends en's JSON; en.Summary is the summary e encodes.
func (e *encodedSummary) append(b []byte, en *types.ContainerListEntry) []byte {
	b = append(b, e.b[:e.image]...)
	if en.ImageIsID {
		b = append(b, e.b[e.imageID:e.mid]...)
	} else {
		b = append(b, e.b[e.image:e.imageID]...)
	}
	b = append(b, e.b[e.mid:e.labels]...)
	b = appendSizes(b, en.SizeRw, en.SizeRootFs)
	b = append(b, e.b[e.labels:e.tail]...)
	b = appendString(b, en.Status)
	return append(b, e.b[e.tail:]...)
}

// appendSummaryHead appends the summary up to the value of Image.
func appendSummaryHead(b []byte, s *types.ContainerSummary) []byte {
	b = append(b, `{"Id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"Names":`...)
	b = appendStrings(b, s.Names)
	return append(b, `,"Image":`...)
}

// appendSummaryMid appends the summary from ImageID to Ports.
func appendSummaryMid(b []byte, s *types.ContainerSummary) []byte {
	b = append(b, `,"ImageID":`...)
	b = appendString(b, s.ImageID)
	b = append(b, `,"Command":`...)
	b = appendString(b, s.Command)
	b = append(b, `,"Created":`...)
	b = strconv.AppendInt(b, s.Created, 10)
	b = append(b, `,"Ports":`...)
	if s.Ports == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, p := range s.Ports {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		if p.IP != "" {
			b = append(b, `"IP":`...)
			b = appendString(b, p.IP)
			b = append(b, ',')
		}
		b = append(b, `"PrivatePort":`...)
		b = strconv.AppendUint(b, uint64(p.PrivatePort), 10)
		if p.PublicPort != 0 {
			b = append(b, `,"PublicPort":`...)
			b = strconv.AppendUint(b, uint64(p.PublicPort), 10)
		}
		b = append(b, `,"Type":`...)
		b = appendString(b, p.Type)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendSizes appends SizeRw and SizeRootFs, each left out when zero.
func appendSizes(b []byte, rw, rootfs int64) []byte {
	if rw != 0 {
		b = append(b, `,"SizeRw":`...)
		b = strconv.AppendInt(b, rw, 10)
	}
	if rootfs != 0 {
		b = append(b, `,"SizeRootFs":`...)
		b = strconv.AppendInt(b, rootfs, 10)
	}
	return b
}

// appendSummaryLabels appends the summary from Labels up to the value of
// Status.
func appendSummaryLabels(b []byte, s *types.ContainerSummary) []byte {
	b = append(b, `,"Labels":`...)
	b = appendStringMap(b, s.Labels)
	b = append(b, `,"State":`...)
	b = appendString(b, s.State)
	return append(b, `,"Status":`...)
}

// appendSummaryTail appends the summary after the value of Status.
func appendSummaryTail(b []byte, s *types.ContainerSummary) []byte {
	b = append(b, `,"HostConfig":{`...)
	comma := false
	if s.HostConfig.NetworkMode != "" {
		b = append(b, `"NetworkMode":`...)
		b = appendString(b, s.HostConfig.NetworkMode)
		comma = true
	}
	if len(s.HostConfig.Annotations) > 0 {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"Annotations":`...)
		b = appendStringMap(b, s.HostConfig.Annotations)
	}
	b = append(b, `},"NetworkSettings":`...)
	if s.NetworkSettings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"Networks":`...)
		b = appendNetworks(b, s.NetworkSettings.Networks)
		b = append(b, '}')
	}
	b = append(b, `,"Mounts":`...)
	if s.Mounts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range s.Mounts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMount(b, &s.Mounts[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendMount(b []byte, m *types.MountPoint) []byte {
	b = append(b, '{')
	if m.Type != "" {
		b = append(b, `"Type":`...)
		b = appendString(b, m.Type)
		b = append(b, ',')
	}
	if m.Name != "" {
		b = append(b, `"Name":`...)
		b = appendString(b, m.Name)
		b = append(b, ',')
	}
	b = append(b, `"Source":`...)
	b = appendString(b, m.Source)
	b = append(b, `,"Destination":`...)
	b = appendString(b, m.Destination)
	if m.Driver != "" {
		b = append(b, `,"Driver":`...)
		b = appendString(b, m.Driver)
	}
	b = append(b, `,"Mode":`...)
	b = appendString(b, m.Mode)
	b = append(b, `,"RW":`...)
	b = strconv.AppendBool(b, m.RW)
	b = append(b, `,"Propagation":`...)
	b = appendString(b, m.Propagation)
	return append(b, '}')
}

func appendNetworks(b []byte, m map[string]*types.EndpointSettings) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendEndpoint(b, m[k])
	}
	return append(b, '}')
}

func appendEndpoint(b []byte, e *types.EndpointSettings) []byte {
	if e == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"IPAMConfig":`...)
	if c := e.IPAMConfig; c == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		comma := false
		if c.IPv4Address != "" {
			b = append(b, `"IPv4Address":`...)
			b = appendString(b, c.IPv4Address)
			comma = true
		}
		if c.IPv6Address != "" {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"IPv6Address":`...)
			b = appendString(b, c.IPv6Address)
			comma = true
		}
		if len(c.LinkLocalIPs) > 0 {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"LinkLocalIPs":`...)
			b = appendStrings(b, c.LinkLocalIPs)
		}
		b = append(b, '}')
	}
	b = append(b, `,"Links":`...)
	b = appendStrings(b, e.Links)
	b = append(b, `,"Aliases":`...)
	b = appendStrings(b, e.Aliases)
	b = append(b, `,"MacAddress":`...)
	b = appendString(b, e.MacAddress)
	b = append(b, `,"DriverOpts":`...)
	b = appendStringMap(b, e.DriverOpts)
	b = append(b, `,"GwPriority":`...)
	b = strconv.AppendInt(b, int64(e.GwPriority), 10)
	b = append(b, `,"NetworkID":`...)
	b = appendString(b, e.NetworkID)
	b = append(b, `,"EndpointID":`...)
	b = appendString(b, e.EndpointID)
	b = append(b, `,"Gateway":`...)
	b = appendString(b, e.Gateway)
	b = append(b, `,"IPAddress":`...)
	b = appendString(b, e.IPAddress)
	b = append(b, `,"IPPrefixLen":`...)
	b = strconv.AppendInt(b, int64(e.IPPrefixLen), 10)
	b = append(b, `,"IPv6Gateway":`...)
	b = appendString(b, e.IPv6Gateway)
	b = append(b, `,"GlobalIPv6Address":`...)
	b = appendString(b, e.GlobalIPv6Address)
	b = append(b, `,"GlobalIPv6PrefixLen":`...)
	b = strconv.AppendInt(b, int64(e.GlobalIPv6PrefixLen), 10)
	b = append(b, `,"DNSNames":`...)
	b = appendStrings(b, e.DNSNames)
	return append(b, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

func appendStrings(b []byte, l []string) []byte {
	if l == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// htmlSafe[c] is '1' for the ASCII bytes encoding/json writes as they are
// with HTML escaping on: printable, and not a quote, a backslash, <, > or &.
const htmlSafe = "00000000000000000000000000000000110111011111111111111111111101011111111111111111111111111111011111111111111111111111111111111111"

// appendString quotes s as encoding/json does with HTML escaping on (the
// json.Encoder default): <, > and & as \u003c, \u003e and \u0026, control
// characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] == '1' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
