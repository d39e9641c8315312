//go:build unix && !linux

package fence

import "syscall"

// pgProcAttr runs a PostgreSQL program as cred (nil: as us), in its own
// process group.
func pgProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
