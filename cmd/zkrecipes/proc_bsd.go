//go:build unix && !linux

package main

import (
	"os"
	"syscall"
)

// sysProcAttr puts CMD in its own process group (if group). Unlike Linux,
// nothing kills CMD if zkrecipes itself is killed.
func sysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group}
}

// isTerminal reports whether f is a character device (a terminal, most
// likely; /dev/null too).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
