package shimclient

import (
	"reflect"
	"testing"

	"skiffd/internal/runtime/cgroups"
	"skiffd/internal/runtime/spec"
)

func TestResources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   spec.Resources
		want cgroups.Resources
	}{
		{"nano cpus", spec.Resources{NanoCPUs: 1_500_000_000}, cgroups.Resources{CPUQuota: 150000, CPUPeriod: 100000}},
		{"quota kept", spec.Resources{CPUQuota: 50000, CPUPeriod: 200000, CPUShares: 512}, cgroups.Resources{CPUQuota: 50000, CPUPeriod: 200000, CPUShares: 512}},
		{"memory", spec.Resources{Memory: 1 << 30, MemorySwap: -1, MemoryReservation: 1 << 29, PidsLimit: 7, BlkioWeight: 300},
			cgroups.Resources{Memory: 1 << 30, MemorySwap: -1, MemoryReservation: 1 << 29, PidsLimit: 7, BlkioWeight: 300}},
		{"devices", spec.Resources{Devices: []spec.DeviceRule{{Allow: true, Type: "c", Major: 10, Minor: 200, Access: "rwm"}, {Type: "", Major: -1, Minor: -1}}},
			cgroups.Resources{Devices: []cgroups.DeviceRule{{Type: 'c', Major: 10, Minor: 200, Access: "rwm", Allow: true}, {Type: 'a', Major: -1, Minor: -1}}}},
	} {
		if got := Resources(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Resources(%+v) = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}
