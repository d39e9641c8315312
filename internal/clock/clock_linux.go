//go:build linux

package clock

import "golang.org/x/sys/unix"

// Boottime reports whether Now counts time the host spent suspended.
const Boottime = true

// Now reads CLOCK_BOOTTIME, which keeps counting while the host is
// suspended.
func Now() Instant {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return monotonic() // not expected since Linux 2.6.39
	}
	return Instant(ts.Nano())
}
