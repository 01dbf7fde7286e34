//go:build race

package logs

// raceEnabled: the race detector makes sync.Pool drop a quarter of what
// is put back, so pooled buffers are allocated again now and then.
const raceEnabled = true
