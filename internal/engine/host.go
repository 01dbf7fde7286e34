package engine

import (
	"bytes"
	"os"
)

// readIPv4Forwarding reports net.ipv4.ip_forward.
func readIPv4Forwarding() (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return false, err
	}
	return string(bytes.TrimSpace(b)) == "1", nil
}
