package policy

import (
	"reflect"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		policy, method string
		group          Group
		allowed        bool
	}{
		{"", "POST", ContainersWrite, true},
		{"mode=ro", "GET", ContainersRead, true},
		{"mode=ro", "HEAD", ImagesRead, true},
		{"mode=ro", "POST", ContainersRead, false},
		{"mode=ro", "GET", Exec, false},
		{"mode=ro", "GET", ContainersCopy, false},
		{"mode=ro", "GET", ImagesSave, false},
		{"mode=ro", "POST", Ping, true},
		{"allow=events", "GET", Events, true},
		{"allow=events", "GET", ContainersRead, false},
		{"allow=events", "GET", Ping, true},
		{"allow=exec&mode=ro", "POST", Exec, false},
		{"allow=containers:write", "GET", Unrouted, true},
	}
	for _, tt := range tests {
		p, err := Parse(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Check(tt.method, tt.group); (err == nil) != tt.allowed {
			t.Errorf("Parse(%q).Check(%s, %s) = %v, want allowed=%v", tt.policy, tt.method, tt.group, err, tt.allowed)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "mode=ro", "allow=ping,events", "mode=rw&allow=exec", "allow=", "mode=ro&mode=ro", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p, err := Parse(q)
		if err != nil {
			return
		}
		again, err := Parse(p.String())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", q, p, p.String(), again, err)
		}
	})
}
