package engine

import (
	"testing"
	"time"

	"skiffd/internal/api/types"
	"skiffd/internal/container"
)

func TestShutdownTimeout(t *testing.T) {
	withStop := func(secs ...int) []*container.Container {
		var list []*container.Container
		for _, s := range secs {
			c := &container.Container{Config: &types.Config{}}
			if s != 10 { // 10 stands for "not set", the default
				c.Config.StopTimeout = &s
			}
			list = append(list, c)
		}
		return list
	}
	tests := []struct {
		name       string
		configured int
		list       []*container.Container
		want       time.Duration
	}{
		{"no containers", 15, nil, 15 * time.Second},
		{"default stop timeouts fit", 15, withStop(10, 10), 15 * time.Second},
		{"a long stop timeout raises it", 15, withStop(10, 30), 35 * time.Second},
		{"short configured", 2, withStop(1), 6 * time.Second},
		{"negative configured waits forever", -1, withStop(1), -1},
		{"negative stop timeout waits forever", 15, withStop(10, -1), -1},
	}
	for _, tt := range tests {
		if got := shutdownTimeout(tt.configured, tt.list); got != tt.want {
			t.Errorf("%s: shutdownTimeout(%d, ...) = %v, want %v", tt.name, tt.configured, got, tt.want)
		}
	}
}
