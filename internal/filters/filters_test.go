package filters

import (
	"errors"
	"slices"
	"testing"

	"skiffd/internal/errdefs"
)

func TestFromParam(t *testing.T) {
	tests := []struct {
		name  string
		param string
		want  map[string][]string // key -> sorted values
	}{
		{"empty string", "", map[string][]string{}},
		{"empty object", "{}", map[string][]string{}},
		{"null", "null", map[string][]string{}},
		{"map form", `{"status":{"exited":true}}`, map[string][]string{"status": {"exited"}}},
		{"map form two keys", `{"event":{"start":true},"type":{"container":true}}`,
			map[string][]string{"event": {"start"}, "type": {"container"}}},
		{"map form false value is present", `{"status":{"exited":false}}`, map[string][]string{"status": {"exited"}}},
		{"map form empty set", `{"dangling":{}}`, map[string][]string{"dangling": {}}},
		{"list form with spaces", `{"label": ["com.docker.compose.project=x", "com.docker.compose.oneoff=False"]}`,
			map[string][]string{"label": {"com.docker.compose.oneoff=False", "com.docker.compose.project=x"}}},
		{"list form duplicates", `{"name":["a","a","b"]}`, map[string][]string{"name": {"a", "b"}}},
		{"list form empty list", `{"name":[]}`, map[string][]string{"name": {}}},
		{"null set", `{"name":null}`, map[string][]string{"name": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := FromParam(tt.param)
			if err != nil {
				t.Fatalf("FromParam(%q) error = %v, want nil", tt.param, err)
			}
			if got := a.Len(); got != len(tt.want) {
				t.Errorf("FromParam(%q).Len() = %d, want %d", tt.param, got, len(tt.want))
			}
			for key, values := range tt.want {
				if !a.Contains(key) {
					t.Errorf("FromParam(%q).Contains(%q) = false, want true", tt.param, key)
				}
				if got := a.Get(key); !slices.Equal(got, values) {
					t.Errorf("FromParam(%q).Get(%q) = %q, want %q", tt.param, key, got, values)
				}
			}
		})
	}
}

func TestFromParamInvalid(t *testing.T) {
	for _, param := range []string{
		"{bad",
		"[]",
		`"status"`,
		"42",
		`{"status":"exited"}`,
		`{"status":{"exited":"yes"}}`,
		`{"a":{"x":true},"b":["y"]}`, // mixed forms are neither
		`{"label":["a",1]}`,
		`{"a":["x"]} trailing`,
	} {
		t.Run(param, func(t *testing.T) {
			_, err := FromParam(param)
			if err == nil {
				t.Fatalf("FromParam(%q) error = nil, want invalid filter", param)
			}
			if got, want := err.Error(), "invalid filter"; got != want {
				t.Errorf("FromParam(%q) error = %q, want %q", param, got, want)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("FromParam(%q) error kind = %v, want invalid parameter", param, errdefs.KindOf(err))
			}
		})
	}
}

func TestToParam(t *testing.T) {
	tests := []struct {
		name string
		args Args
		want string
	}{
		{"empty", NewArgs(), ""},
		{"zero value", Args{}, ""},
		{"sorted map form", NewArgs(Arg("type", "container"), Arg("event", "start"), Arg("event", "die")),
			`{"event":{"die":true,"start":true},"type":{"container":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToParam(tt.args)
			if err != nil || got != tt.want {
				t.Errorf("ToParam() = %q, %v, want %q, nil", got, err, tt.want)
			}
		})
	}
	// The false of the map form survives a round trip.
	a, err := FromParam(`{"status":{"exited":false}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ToParam(a); got != `{"status":{"exited":false}}` {
		t.Errorf("ToParam(FromParam(false value)) = %q, want the false kept", got)
	}
}

func TestArgsEditing(t *testing.T) {
	var a Args // the zero value works through a pointer
	a.Add("name", "web")
	a.Add("name", "db")
	a.Add("label", "x")
	if got, want := a.Keys(), []string{"label", "name"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	c := a.Clone()
	a.Del("name", "web")
	if got, want := a.Get("name"), []string{"db"}; !slices.Equal(got, want) {
		t.Errorf("after Del, Get(name) = %q, want %q", got, want)
	}
	if got, want := c.Get("name"), []string{"db", "web"}; !slices.Equal(got, want) {
		t.Errorf("Clone().Get(name) = %q, want %q (clone must not share sets)", got, want)
	}
	a.Del("name", "db")
	if a.Contains("name") {
		t.Errorf("Contains(name) after deleting every value = true, want false")
	}
	if got := a.Get("missing"); got == nil || len(got) != 0 {
		t.Errorf("Get(missing) = %#v, want empty non-nil slice", got)
	}
	var walked []string
	err := c.WalkValues("name", func(v string) error {
		walked = append(walked, v)
		return errors.New("stop")
	})
	if err == nil || len(walked) != 1 {
		t.Errorf("WalkValues stopping at the first error: err = %v, walked %q", err, walked)
	}
}

func TestValidate(t *testing.T) {
	accepted := map[string]bool{"name": true, "label": true}
	tests := []struct {
		param   string
		wantErr string
	}{
		{"", ""},
		{`{"name":{"x":true},"label":{"a":true}}`, ""},
		{`{"nosuchfilter":["x"]}`, "invalid filter 'nosuchfilter'"},
		{`{"name":["x"],"zzz":["y"],"aaa":["z"]}`, "invalid filter 'aaa'"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			a, err := FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			err = a.Validate(accepted)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%q) = %v, want nil", tt.param, err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("Validate(%q) = %v, want %q", tt.param, err, tt.wantErr)
			case tt.wantErr != "" && !errors.Is(err, errdefs.ErrInvalidParameter):
				t.Errorf("Validate(%q) kind = %v, want invalid parameter", tt.param, errdefs.KindOf(err))
			}
		})
	}
}

// matcherCase is one call of a matcher on Args parsed from param.
type matcherCase struct {
	param  string
	key    string
	source string
	want   bool
}

func runMatcher(t *testing.T, name string, match func(Args, string, string) bool, cases []matcherCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(name+"/"+tt.param+"/"+tt.source, func(t *testing.T) {
			a, err := FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			if got := match(a, tt.key, tt.source); got != tt.want {
				t.Errorf("%s(%s, %q, %q) = %v, want %v", name, tt.param, tt.key, tt.source, got, tt.want)
			}
		})
	}
}

func TestExactMatch(t *testing.T) {
	runMatcher(t, "ExactMatch", Args.ExactMatch, []matcherCase{
		{"", "name", "anything", true},
		{`{"name":[]}`, "name", "anything", true},
		{`{"name":["web"]}`, "name", "web", true},
		{`{"name":["web"]}`, "name", "web1", false},
		{`{"name":["web","db"]}`, "name", "db", true},
		{`{"name":{"web":false}}`, "name", "web", false}, // dockerd's quirk
		{`{"other":["x"]}`, "name", "web", true},
	})
}

func TestUniqueExactMatch(t *testing.T) {
	runMatcher(t, "UniqueExactMatch", Args.UniqueExactMatch, []matcherCase{
		{"", "name", "x", true},
		{`{"name":["web"]}`, "name", "web", true},
		{`{"name":["web"]}`, "name", "db", false},
		{`{"name":["web","db"]}`, "name", "web", false},
	})
}

func TestFuzzyMatch(t *testing.T) {
	runMatcher(t, "FuzzyMatch", Args.FuzzyMatch, []matcherCase{
		{"", "id", "6c6eea61", true},
		{`{"id":["6c6e"]}`, "id", "6c6eea61d31b", true},
		{`{"id":["6c6eea61d31b"]}`, "id", "6c6eea61d31b", true},
		{`{"id":["6c6f"]}`, "id", "6c6eea61d31b", false},
		{`{"id":["6c6eea61d31bXX"]}`, "id", "6c6eea61d31b", false},
		{`{"id":["ea61"]}`, "id", "6c6eea61d31b", false}, // prefix only
		{`{"id":{"6c6e":false}}`, "id", "6c6eea61", true},
	})
}

func TestMatch(t *testing.T) {
	runMatcher(t, "Match", Args.Match, []matcherCase{
		{"", "name", "web", true},
		{`{"name":["web"]}`, "name", "web", true},
		{`{"name":["web"]}`, "name", "myweb1", true}, // unanchored
		{`{"name":["^web$"]}`, "name", "myweb1", false},
		{`{"name":["^web$"]}`, "name", "web", true},
		{`{"name":["w.b"]}`, "name", "wxb", true},
		{`{"name":["db","web"]}`, "name", "web-1", true},
		{`{"name":["db"]}`, "name", "web", false},
		{`{"name":["(unclosed"]}`, "name", "(unclosed", true}, // exact still works
		{`{"name":["(unclosed"]}`, "name", "x(unclosed", false},
	})
}

func TestMatchKVList(t *testing.T) {
	labels := map[string]string{"com.docker.compose.project": "demo", "com.docker.compose.oneoff": "False", "empty": ""}
	tests := []struct {
		param   string
		sources map[string]string
		want    bool
	}{
		{"", labels, true},
		{"", nil, true},
		{`{"label":["com.docker.compose.project"]}`, labels, true},
		{`{"label":["com.docker.compose.project=demo"]}`, labels, true},
		{`{"label":["com.docker.compose.project=other"]}`, labels, false},
		{`{"label":["com.docker.compose.project=demo","com.docker.compose.oneoff=False"]}`, labels, true},
		{`{"label":["com.docker.compose.project=demo","com.docker.compose.oneoff=True"]}`, labels, false},
		{`{"label":["missing"]}`, labels, false},
		{`{"label":["empty="]}`, labels, true},
		{`{"label":["empty"]}`, labels, true},
		{`{"label":["a=b=c"]}`, map[string]string{"a": "b=c"}, true},
		{`{"label":["x"]}`, nil, false},
		{`{"label":["project!=demo"]}`, map[string]string{"project": "other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			a, err := FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.MatchKVList("label", tt.sources); got != tt.want {
				t.Errorf("MatchKVList(%s, %v) = %v, want %v", tt.param, tt.sources, got, tt.want)
			}
		})
	}
}

func TestGetBoolOrDefault(t *testing.T) {
	tests := []struct {
		param   string
		def     bool
		want    bool
		wantErr string
	}{
		{"", true, true, ""},
		{"", false, false, ""},
		{`{"dangling":["true"]}`, false, true, ""},
		{`{"dangling":["1"]}`, false, true, ""},
		{`{"dangling":["false"]}`, true, false, ""},
		{`{"dangling":["0"]}`, true, false, ""},
		{`{"dangling":["true","1"]}`, false, true, ""},
		{`{"dangling":[]}`, true, true, "invalid filter 'dangling'"},
		{`{"dangling":["maybe"]}`, true, true, "invalid filter 'dangling=[maybe]'"},
		{`{"dangling":["true","false"]}`, true, true, "invalid filter 'dangling=[false true]'"},
		{`{"dangling":{"true":false}}`, false, false, "invalid filter 'dangling=[true]'"},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			a, err := FromParam(tt.param)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.GetBoolOrDefault("dangling", tt.def)
			if got != tt.want {
				t.Errorf("GetBoolOrDefault(%s, %v) = %v, want %v", tt.param, tt.def, got, tt.want)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("GetBoolOrDefault(%s) error = %v, want nil", tt.param, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("GetBoolOrDefault(%s) error = %v, want %q", tt.param, err, tt.wantErr)
			}
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Errorf("GetBoolOrDefault(%s) kind = %v, want invalid parameter", tt.param, errdefs.KindOf(err))
			}
		})
	}
}

// sameArgs compares everything a caller can observe, including the false of
// the map form.
func sameArgs(a, b Args) bool {
	if !slices.Equal(a.Keys(), b.Keys()) {
		return false
	}
	for _, k := range a.Keys() {
		if !slices.Equal(a.Get(k), b.Get(k)) {
			return false
		}
		for _, v := range a.Get(k) {
			if a.ExactMatch(k, v) != b.ExactMatch(k, v) {
				return false
			}
		}
	}
	return true
}

func FuzzFromParam(f *testing.F) {
	for _, seed := range []string{
		"",
		"{}",
		"null",
		`{"status":{"exited":true}}`,
		`{"status":{"exited":false,"running":true}}`,
		`{"label": ["a=b", "c=d"]}`,
		`{"name":null}`,
		`{"a":null,"b":["x"]}`,
		`{"a":{"x":true},"b":["y"]}`,
		"{bad",
		`{"\u00e9\ud800":["\xff"]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, param string) {
		a, err := FromParam(param)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidParameter) {
				t.Fatalf("FromParam(%q) error kind = %v, want invalid parameter", param, errdefs.KindOf(err))
			}
			return
		}
		encoded, err := ToParam(a)
		if err != nil {
			t.Fatalf("ToParam(FromParam(%q)) error = %v", param, err)
		}
		b, err := FromParam(encoded)
		if err != nil {
			t.Fatalf("FromParam(ToParam(FromParam(%q)) = %q) error = %v", param, encoded, err)
		}
		if !sameArgs(a, b) {
			t.Fatalf("round trip of %q through %q changed the filters", param, encoded)
		}
		again, err := ToParam(b)
		if err != nil || again != encoded {
			t.Fatalf("ToParam is not stable: %q then %q (%v)", encoded, again, err)
		}
		// The matchers must not panic on anything FromParam accepted.
		for _, k := range a.Keys() {
			a.Match(k, param)
			a.FuzzyMatch(k, param)
			a.MatchKVList(k, map[string]string{param: param})
			_, _ = a.GetBoolOrDefault(k, false)
		}
	})
}
