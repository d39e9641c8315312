package zktest

import "syscall"

// sysProcAttr puts the JVM in its own process group (a ^C in the terminal
// reaches only the test binary, which cleans up) and kills it if the test
// process dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
