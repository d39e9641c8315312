//go:build linux

package clock

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Boottime reports whether Now counts time the host spent suspended.
const Boottime = true

// Now reads CLOCK_BOOTTIME, which keeps counting while the host is
// suspended.
//
// Reading CLOCK_BOOTTIME is a system call (Go reads only the wall and
// monotonic clocks through the vDSO), and Now is on every request's path.
// So Now reads Go's clocks and adds the offset of CLOCK_BOOTTIME from the
// monotonic clock, which changes only when the host resumes from a
// suspend. A resume moves the wall clock by the same amount at the same
// time (the kernel adds the time slept to both), so the wall clock's
// offset from the monotonic clock tells: while it is unchanged (within
// offsetSlack) the cached offset holds, and when it moves (a resume, or
// the wall clock set or slewed) Now reads CLOCK_BOOTTIME again.
func Now() Instant {
	t := time.Now() // wall and monotonic, through the vDSO
	mono := t.Sub(start)
	wallOff := t.UnixNano() - int64(mono)
	if c := cached.Load(); c != nil {
		if d := wallOff - c.wallOff; d > -offsetSlack && d < offsetSlack {
			return Instant(int64(mono) + c.bootOff)
		}
	}
	return refresh(mono, wallOff)
}

// offsetSlack is how far the wall clock's offset from the monotonic clock
// may drift (NTP slews it by at most 0.5 ms a second) before Now reads
// CLOCK_BOOTTIME again. A suspend shorter than this may go unseen: the
// deadline it would move is then at most this late.
const offsetSlack = int64(time.Millisecond)

type offsets struct {
	wallOff int64 // wall clock − monotonic clock, when bootOff was read
	bootOff int64 // CLOCK_BOOTTIME − monotonic clock
}

var cached atomic.Pointer[offsets]

// refresh reads CLOCK_BOOTTIME and caches its offset from the monotonic
// clock; mono is the caller's monotonic reading. The offset only grows
// (time slept adds to it), so a new reading never moves Now back.
func refresh(mono time.Duration, wallOff int64) Instant {
	boot, ok := bootOffset(func() time.Duration { return time.Since(start) }, readBoottime)
	if !ok {
		return monotonic() // not expected since Linux 2.6.39
	}
	for {
		old := cached.Load()
		if old != nil && old.bootOff > boot {
			boot = old.bootOff
		}
		if cached.CompareAndSwap(old, &offsets{wallOff: wallOff, bootOff: boot}) {
			return Instant(int64(mono) + boot)
		}
	}
}

func readBoottime() (int64, error) {
	var ts unix.Timespec
	err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return ts.Nano(), err
}

// bootOffset returns CLOCK_BOOTTIME's offset from the monotonic clock. It
// reads boot between two readings of mono and takes the offset from their
// midpoint, off by at most half their span; it tries until a span is
// tight (20 µs) or for 64 tries, and keeps the tightest. A thread held up
// between a single mono reading and the system call (a busy host) would
// put the offset, and every later Now of the process, ahead by as long as
// it waited: the offset only grows, so the error would stay. Instants of
// one process would still agree with each other, but not with another
// process's (what zkverify compares). Each try costs about a microsecond,
// and refresh runs only when the wall clock moves against the monotonic.
func bootOffset(mono func() time.Duration, boot func() (int64, error)) (int64, bool) {
	const tries, tight = 64, 20 * time.Microsecond
	var best int64
	bestSpan := time.Duration(-1)
	for range tries {
		before := mono()
		b, err := boot()
		if err != nil {
			return 0, false
		}
		span := mono() - before
		if bestSpan < 0 || span < bestSpan {
			best, bestSpan = b-int64(before+span/2), span
		}
		if span <= tight {
			break
		}
	}
	return best, true
}
