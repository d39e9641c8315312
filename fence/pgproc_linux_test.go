package fence

import "syscall"

// pgProcAttr runs a PostgreSQL program as cred (nil: as us), in its own
// process group, killed if the test process dies.
func pgProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
