//go:build unix

package zktest

import (
	"errors"
	"fmt"
	"syscall"
)

// The server processes are signalled and reaped with raw syscalls rather
// than (*os.Process).Wait so that no goroutine has to block in Wait while a
// server runs: a shared cluster then leaves no goroutines behind for leak
// checkers. A pid is never signalled after it was reaped, so it cannot have
// been reused.

func signalPid(pid int, sig syscall.Signal) error {
	return syscall.Kill(pid, sig)
}

var (
	sigKill = syscall.SIGKILL
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// reapPid reaps pid. With block=false it returns exited=false at once if the
// process still runs.
func reapPid(pid int, block bool) (exited bool, status string, err error) {
	flags := syscall.WNOHANG
	if block {
		flags = 0
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(pid, &ws, flags, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if errors.Is(err, syscall.ECHILD) {
				return true, "unknown (already reaped)", nil
			}
			return false, "", err
		}
		if wpid == 0 {
			return false, "", nil
		}
		switch {
		case ws.Exited():
			return true, fmt.Sprintf("exit status %d", ws.ExitStatus()), nil
		case ws.Signaled():
			return true, fmt.Sprintf("killed by %v", ws.Signal()), nil
		default:
			return true, fmt.Sprintf("wait status %#x", uint32(ws)), nil
		}
	}
}
