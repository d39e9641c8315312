//go:build linux && race

package wire

import (
	"runtime"
	"unsafe"
)

// ioSync is what the race detector is told the raw socket calls order, as
// syscall.Read and syscall.Write tell it for net.Conn: a write happens
// before a later read. The detector also learns which bytes the kernel
// wrote into a read's buffer and read from a write's.
var ioSync int64

func raceRead(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}

func raceWriteStart() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }

func raceWritten(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}
