package container

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"skiffd/internal/api/types"
)

// fill sets every field reachable from v (a pointer) to a non-zero value
// derived from seed, with one- and two-entry maps and slices; so a field
// added to the summary types shows up in encoding/json's output and must
// show up in appendSummaries' too.
func fill(v reflect.Value, seed string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), seed)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), seed+strconv.Itoa(i))
		}
	case reflect.String:
		v.SetString(seed)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(len(seed)) * -7)
	case reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(seed)) * 11)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0).Addr(), seed+"a")
		fill(s.Index(1).Addr(), seed+"b")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{seed + "z", seed + "<a>"} {
			e := reflect.New(v.Type().Elem())
			fill(e, seed+k)
			m.SetMapIndex(reflect.ValueOf(k), e.Elem())
		}
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func encodingJSON(t testing.TB, list []*types.ContainerSummary) string {
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestAppendSummariesMatchesEncodingJSON: the list's hand-written encoder
// writes what json.Encoder writes, for full and empty summaries, nil and
// empty slices and maps, and strings that need escaping.
func TestAppendSummariesMatchesEncodingJSON(t *testing.T) {
	full := new(types.ContainerSummary)
	fill(reflect.ValueOf(full), "s\"\\<>&\u2028\u2029\x01\b\f\n\r\t\xffé€😀")
	plain := &types.ContainerSummary{ID: "abc", Names: []string{"/web"}, Image: "busybox", ImageID: "sha256:1", Command: "sh -c 'a && b'",
		Created: 1700000000, Ports: []types.Port{{PrivatePort: 80, Type: "tcp"}, {IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp"}},
		Labels: map[string]string{}, State: "running", Status: "Up 2 minutes", HostConfig: types.SummaryHostConfig{NetworkMode: "bridge"},
		NetworkSettings: &types.SummaryNetworkSettings{Networks: map[string]*types.EndpointSettings{"bridge": {IPAddress: "172.17.0.2", IPPrefixLen: 16}, "none": nil}},
		Mounts:          []types.MountPoint{}}
	for _, tc := range []struct {
		name string
		list []*types.ContainerSummary
	}{
		{"nil list", nil},
		{"empty list", []*types.ContainerSummary{}},
		{"zero summary", []*types.ContainerSummary{{}}},
		{"nil summary", []*types.ContainerSummary{nil}},
		{"full", []*types.ContainerSummary{full}},
		{"plain", []*types.ContainerSummary{plain, plain}},
		{"empty IPAM config and annotations", []*types.ContainerSummary{{HostConfig: types.SummaryHostConfig{Annotations: map[string]string{}},
			NetworkSettings: &types.SummaryNetworkSettings{Networks: map[string]*types.EndpointSettings{"n": {IPAMConfig: &types.EndpointIPAMConfig{}}}}}}},
		{"IPAM config without IPv4", []*types.ContainerSummary{{NetworkSettings: &types.SummaryNetworkSettings{Networks: map[string]*types.EndpointSettings{"n": {IPAMConfig: &types.EndpointIPAMConfig{IPv6Address: "::1", LinkLocalIPs: []string{"fe80::1"}}}}}}}},
		{"annotations without network mode", []*types.ContainerSummary{{HostConfig: types.SummaryHostConfig{Annotations: map[string]string{"a": "b"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := string(appendSummaries(nil, tc.list)), encodingJSON(t, tc.list)
			if got != want {
				t.Errorf("appendSummaries =\n%s\nwant (encoding/json)\n%s", got, want)
			}
		})
	}
}

// FuzzAppendString holds the string quoting to encoding/json's on any
// bytes, valid UTF-8 or not.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<script>&amp;</script>", "\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "é€😀", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestAppendEntriesMatchesEncodingJSON: a list spliced from cached
// encodings writes what encoding/json writes for the same summaries with
// the entries' image, sizes and status in, whether the cache is new or was
// filled by an earlier list with other statuses and sizes.
func TestAppendEntriesMatchesEncodingJSON(t *testing.T) {
	full := new(types.ContainerSummary)
	fill(reflect.ValueOf(full), "s\"\\<>&\u2028\u2029\x01\b\f\n\r\t\xffé€😀")
	full.Status, full.SizeRw, full.SizeRootFs = "", 0, 0
	plain := &types.ContainerSummary{ID: "abc", Names: []string{"/web"}, Image: "busybox", ImageID: "sha256:1", Command: "sh",
		Labels: map[string]string{"a": "<b>"}, State: "exited", HostConfig: types.SummaryHostConfig{NetworkMode: "none"},
		NetworkSettings: &types.SummaryNetworkSettings{Networks: map[string]*types.EndpointSettings{}}, Mounts: []types.MountPoint{}}
	zero := new(types.ContainerSummary)
	caches := map[*types.ContainerSummary]*types.ListCache{full: {}, plain: {}, zero: {}}
	for _, tc := range []struct {
		name    string
		entries []types.ContainerListEntry
	}{
		{"empty", []types.ContainerListEntry{}},
		{"nil", nil},
		{"one", []types.ContainerListEntry{{Summary: plain, Status: "Exited (0) 2 minutes ago"}}},
		{"same cache, other status", []types.ContainerListEntry{{Summary: plain, Status: "Exited (0) <3 minutes> ago"}}},
		{"image ID", []types.ContainerListEntry{{Summary: plain, Status: "Created", ImageIsID: true}}},
		{"sizes", []types.ContainerListEntry{{Summary: plain, Status: "Created", SizeRw: 12, SizeRootFs: 4096}}},
		{"root fs size only", []types.ContainerListEntry{{Summary: plain, SizeRootFs: 4096}}},
		{"full", []types.ContainerListEntry{{Summary: full, Status: "Up 1 second (health: starting)", SizeRw: -3}, {Summary: zero}}},
		{"full again, image ID", []types.ContainerListEntry{{Summary: zero, ImageIsID: true}, {Summary: full, ImageIsID: true, Status: "x"}, {Summary: plain}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []*types.ContainerSummary
			if tc.entries != nil {
				want = []*types.ContainerSummary{}
			}
			for i := range tc.entries {
				en := &tc.entries[i]
				en.Cache = caches[en.Summary]
				s := *en.Summary
				s.Status, s.SizeRw, s.SizeRootFs = en.Status, en.SizeRw, en.SizeRootFs
				if en.ImageIsID {
					s.Image = s.ImageID
				}
				want = append(want, &s)
			}
			if tc.entries == nil {
				want = []*types.ContainerSummary{} // the handler answers [] for none
			}
			if got, want := string(appendEntries(nil, tc.entries)), encodingJSON(t, want); got != want {
				t.Errorf("appendEntries =\n%s\nwant (encoding/json)\n%s", got, want)
			}
		})
	}
}

// TestAppendEntriesAllocatesNothing: with the encodings cached and the
// buffer grown, a list's encoding allocates nothing (issue 13, list rate).
func TestAppendEntriesAllocatesNothing(t *testing.T) {
	entries := make([]types.ContainerListEntry, 50)
	for i := range entries {
		s := &types.ContainerSummary{ID: strconv.Itoa(i), Names: []string{"/c" + strconv.Itoa(i)}, Image: "busybox", ImageID: "sha256:1",
			Labels: map[string]string{"a": "b"}, NetworkSettings: &types.SummaryNetworkSettings{Networks: map[string]*types.EndpointSettings{"none": {}}}}
		entries[i] = types.ContainerListEntry{Summary: s, Status: "Up 2 seconds", ImageIsID: i%2 == 0, Cache: new(types.ListCache)}
	}
	buf := appendEntries(nil, entries)
	if n := testing.AllocsPerRun(20, func() { buf = appendEntries(buf[:0], entries) }); n != 0 {
		t.Errorf("appendEntries allocates %v times a list", n)
	}
}

// TestListCacheAnswersSameEntriesOnly: List's kept answers are reused for
// the same entries only; any change of an entry's summary (a new saved
// state, even with the same content), status text, image shown or sizes,
// or of the entries listed, gives a new answer with the JSON of the new
// entries.
func TestListCacheAnswersSameEntriesOnly(t *testing.T) {
	summary := func(i int) *types.ContainerSummary {
		return &types.ContainerSummary{ID: strconv.Itoa(i), Names: []string{"/c" + strconv.Itoa(i)}, Image: "busybox", ImageID: "sha256:1",
			Labels: map[string]string{}, State: "running", NetworkSettings: &types.SummaryNetworkSettings{}}
	}
	base := func() []types.ContainerListEntry {
		var l []types.ContainerListEntry
		for i := range 3 {
			l = append(l, types.ContainerListEntry{Summary: summary(i), Status: "Up 2 seconds", Cache: new(types.ListCache)})
		}
		return l
	}
	// sameEntries compares every field an answer depends on: a field
	// added to the entries must be compared there, or be the cache.
	compared := map[string]bool{"Summary": true, "Status": true, "ImageIsID": true, "SizeRw": true, "SizeRootFs": true, "Cache": true}
	for f := range reflect.TypeFor[types.ContainerListEntry]().Fields() {
		if !compared[f.Name] {
			t.Errorf("ContainerListEntry.%s is not compared by sameEntries", f.Name)
		}
	}
	entries := base()
	var c listCache
	first := c.answer(entries)
	if got := c.answer(slices.Clone(entries)); got != first {
		t.Fatal("the same entries again: a new answer, want the last one")
	}
	// Two queries polled in turn (docker ps, docker ps -a) keep theirs.
	second := c.answer(entries[:1])
	if c.answer(slices.Clone(entries)) != first || c.answer(slices.Clone(entries[:1])) != second {
		t.Fatal("two lists in turn: new answers, want the ones kept")
	}
	for _, tc := range []struct {
		name   string
		change func(l []types.ContainerListEntry) []types.ContainerListEntry
	}{
		{"new saved state, same content", func(l []types.ContainerListEntry) []types.ContainerListEntry {
			s := *l[1].Summary
			l[1].Summary, l[1].Cache = &s, new(types.ListCache)
			return l
		}},
		{"renamed", func(l []types.ContainerListEntry) []types.ContainerListEntry {
			s := *l[1].Summary
			s.Names = []string{"/renamed"}
			l[1].Summary, l[1].Cache = &s, new(types.ListCache)
			return l
		}},
		{"status text", func(l []types.ContainerListEntry) []types.ContainerListEntry { l[2].Status = "Up 3 seconds"; return l }},
		{"image shown", func(l []types.ContainerListEntry) []types.ContainerListEntry { l[0].ImageIsID = true; return l }},
		{"size rw", func(l []types.ContainerListEntry) []types.ContainerListEntry { l[0].SizeRw = 1; return l }},
		{"size root fs", func(l []types.ContainerListEntry) []types.ContainerListEntry { l[0].SizeRootFs = 1; return l }},
		{"removed", func(l []types.ContainerListEntry) []types.ContainerListEntry { return l[1:] }},
		{"added", func(l []types.ContainerListEntry) []types.ContainerListEntry {
			return append(l, types.ContainerListEntry{Summary: summary(9), Status: "Created", Cache: new(types.ListCache)})
		}},
		{"reordered", func(l []types.ContainerListEntry) []types.ContainerListEntry { l[0], l[1] = l[1], l[0]; return l }},
		{"none", func(l []types.ContainerListEntry) []types.ContainerListEntry { return l[:0] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := c.answer(entries) // the last answer, held
			changed := tc.change(slices.Clone(entries))
			got := c.answer(changed)
			if got == prev {
				t.Fatal("answer after the change is the one before it")
			}
			if want := appendEntries(nil, changed); !bytes.Equal(got.body, want) {
				t.Errorf("answer =\n%s\nwant (encoded anew)\n%s", got.body, want)
			}
			if n, err := strconv.Atoi(got.length[0]); err != nil || n != len(got.body) {
				t.Errorf("Content-Length %q for %d bytes", got.length, len(got.body))
			}
			if again := c.answer(slices.Clone(changed)); again != got {
				t.Error("the changed entries again: a new answer, want the last one")
			}
		})
	}
}
