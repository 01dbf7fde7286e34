package engine

import (
	"encoding/json"
	"testing"

	"skiffd/internal/api/types"
)

// TestProgressBar checks the bars against lines dockerd sent in
// /work/shared/api-traces/pull-ok.txt.
func TestProgressBar(t *testing.T) {
	tests := []struct {
		current, total int64
		want           string
	}{
		{32768, 1028093, "[=>                                                 ]  32.77kB/1.028MB"},
		{367, 367, "[==================================================>]     367B/367B"},
		{360448, 1028093, "[=================>                                 ]  360.4kB/1.028MB"},
		{98304, 1028093, "[====>                                              ]   98.3kB/1.028MB"},
		{1015808, 1028093, "[=================================================> ]  1.016MB/1.028MB"},
		{0, 0, ""},
	}
	for _, tt := range tests {
		if got := progressBar(tt.current, tt.total); got != tt.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tt.current, tt.total, got, tt.want)
		}
	}
}

// TestProgressMessageJSON checks the wire shape of the per-layer messages.
func TestProgressMessageJSON(t *testing.T) {
	var got []string
	p := progressFunc(func(m types.ProgressMessage) {
		b, _ := json.Marshal(m)
		got = append(got, string(b))
	})
	p.step("c3542e889c06", "Pull complete")
	p.bytes("c3542e889c06", "Downloading", 367, 367)
	p(types.ProgressMessage{Status: "Pulling from trace/pulled", ID: "1"})
	want := []string{
		`{"status":"Pull complete","progressDetail":{},"id":"c3542e889c06"}`,
		`{"status":"Downloading","progressDetail":{"current":367,"total":367},"progress":"[==================================================\u003e]     367B/367B","id":"c3542e889c06"}`,
		`{"status":"Pulling from trace/pulled","id":"1"}`,
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %s, want %s", i, got[i], want[i])
		}
	}
}
