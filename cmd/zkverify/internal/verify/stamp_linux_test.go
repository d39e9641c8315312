//go:build linux

package verify

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestStampsReadTheBootClock: events are stamped with CLOCK_BOOTTIME, which
// every process of a run reads alike and which a step of the wall clock
// does not move (see now). A wall-clock stamp is decades away from it.
func TestStampsReadTheBootClock(t *testing.T) {
	before := now()
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts))
	after := now()
	slack := int64(clockSlack) // what the clock check allows between two processes
	assert.LessOrEqual(t, before, ts.Nano()+slack, "now() ran ahead of CLOCK_BOOTTIME")
	assert.GreaterOrEqual(t, after, ts.Nano()-slack, "now() lags CLOCK_BOOTTIME")

	// Messages show stamps as wall-clock times.
	assert.WithinDuration(t, time.Now(), wallTime(now()), time.Second)
	// A history kept before the change holds wall-clock stamps: shown as is.
	wall := time.Now()
	assert.True(t, wallTime(wall.UnixNano()).Equal(wall.Round(0)))
}
