//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// signalProcess sends sig to p, or to p's whole process group.
func signalProcess(p *os.Process, group bool, sig syscall.Signal) error {
	if !group {
		return p.Signal(sig)
	}
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// processGone reports whether no process pid exists (a zombie counts as
// running: its parent has not reaped it).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
