package units

import "testing"

func TestRAMInBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"512", 512}, {"1k", 1024}, {"1.5k", 1536}, {"10m", 10 << 20}, {"1m", 1 << 20}, {"1MiB", 1 << 20}, {"1.5g", 3 << 29}, {"2 GB", 2 << 30}, {"1t", 1 << 40},
		{"", -1}, {"m", -1}, {"x", -1}, {"1x", -1}, {"-1", -1}, {"1..2", -1}, {".5m", -1}, {"1  m", -1},
	}
	for _, tt := range tests {
		got, err := RAMInBytes(tt.in)
		if got != tt.want || (err != nil) != (tt.want < 0) {
			t.Errorf("RAMInBytes(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
