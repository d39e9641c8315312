//go:build !linux

package clock

// Boottime reports whether Now counts time the host spent suspended.
const Boottime = false

// Now reads Go's monotonic clock, which may stop while the host is
// suspended on this platform.
func Now() Instant { return monotonic() }
