//go:build linux

package clock

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func boottime(t *testing.T) Instant {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return Instant(ts.Nano())
}

// Now agrees with CLOCK_BOOTTIME read directly.
func TestNowIsBoottime(t *testing.T) {
	for range 1000 {
		before := boottime(t)
		now := Now()
		after := boottime(t)
		if now < before-Instant(time.Millisecond) || now > after+Instant(time.Millisecond) {
			t.Fatalf("Now %d is not between CLOCK_BOOTTIME readings %d and %d", now, before, after)
		}
	}
}

// A move of the wall clock's offset from the monotonic clock, as a resume
// from suspend makes, makes Now read CLOCK_BOOTTIME again: a cached offset
// that misses the time slept is not used.
func TestNowSeesResume(t *testing.T) {
	Now()
	c := cached.Load()
	// As if the host had slept an hour since the offsets were cached: the
	// wall clock is an hour ahead of what the cache knows, and so is
	// CLOCK_BOOTTIME.
	cached.Store(&offsets{wallOff: c.wallOff - int64(time.Hour), bootOff: c.bootOff - int64(time.Hour)})
	defer cached.Store(c)
	before := boottime(t)
	if now := Now(); now < before {
		t.Fatalf("Now %d is behind CLOCK_BOOTTIME %d: the stale offset was used", now, before)
	}
	if got := cached.Load(); got.bootOff < c.bootOff-int64(time.Millisecond) {
		t.Fatalf("offset not refreshed: %d, want about %d", got.bootOff, c.bootOff)
	}
}

func BenchmarkNow(b *testing.B) {
	for range b.N {
		Now()
	}
}

func BenchmarkBoottimeSyscall(b *testing.B) {
	var ts unix.Timespec
	for range b.N {
		_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	}
}

// bootOffset keeps the tightest of its tries: a try whose system call was
// held up (here by 5 ms) does not set the offset.
func TestBootOffsetSkipsAHeldUpRead(t *testing.T) {
	const trueOffset = int64(7 * time.Hour)
	var mono time.Duration
	tries := 0
	readMono := func() time.Duration { return mono }
	readBoot := func() (int64, error) {
		tries++
		if tries == 1 {
			mono += 5 * time.Millisecond // the thread waited before the call
		}
		b := int64(mono) + trueOffset
		mono += time.Microsecond
		return b, nil
	}
	got, ok := bootOffset(readMono, readBoot)
	if !ok {
		t.Fatal("bootOffset failed")
	}
	if d := time.Duration(got - trueOffset); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("offset off by %v after %d tries", d, tries)
	}
	if tries != 2 {
		t.Fatalf("%d tries: want the held-up one and one tight one", tries)
	}
}

// Offsets measured again and again agree with each other to within a few
// microseconds: the cached offset is no further from the true one.
func TestBootOffsetIsTight(t *testing.T) {
	var lo, hi int64
	for i := range 200 {
		got, ok := bootOffset(func() time.Duration { return time.Since(start) }, readBoottime)
		if !ok {
			t.Fatal("bootOffset failed")
		}
		if i == 0 || got < lo {
			lo = got
		}
		if i == 0 || got > hi {
			hi = got
		}
	}
	if spread := time.Duration(hi - lo); spread > 200*time.Microsecond {
		t.Fatalf("offsets spread over %v", spread)
	}
}
