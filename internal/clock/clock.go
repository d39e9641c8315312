// Package clock reads the clock that session deadlines are measured on.
//
// A session's local deadline must pass in real time, including time the
// host spent suspended (a paused VM, a sleeping laptop): the server's
// clock went on meanwhile and may have expired the session. Go's monotonic
// clock stops while a Linux host is suspended, so on Linux this package
// reads CLOCK_BOOTTIME, which counts suspended time. Elsewhere it reads
// Go's monotonic clock: on those platforms a deadline may be noticed late
// after a host suspend (the fence still protects the resource).
package clock

import "time"

// Instant is a reading of the clock, in nanoseconds from an arbitrary
// origin. Instants from one process compare and subtract meaningfully.
type Instant int64

// Sub returns a − b.
func (a Instant) Sub(b Instant) time.Duration { return time.Duration(a - b) }

// Add returns a + d.
func (a Instant) Add(d time.Duration) Instant { return a + Instant(d) }

// Since returns the time passed since a.
func Since(a Instant) time.Duration { return Now().Sub(a) }

// Time converts a to wall-clock time, as seen now (for messages and for
// APIs that take a time.Time).
func (a Instant) Time() time.Time { return time.Now().Add(a.Sub(Now())) }

// start is the origin of the fallback clock.
var start = time.Now()

// monotonic reads Go's monotonic clock.
func monotonic() Instant { return Instant(time.Since(start)) }
