package nginx

import (
	"os/exec"
	"syscall"
)

const sigQuit = syscall.SIGQUIT

// setProcAttr puts nginx in its own process group, so its workers can be
// killed with it, and has the kernel stop the master if the test binary
// dies without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
}

// killGroup kills the master and every worker of the group it leads. The
// group id is the master's pid; the kernel keeps it allocated while any
// member lives, so it cannot name someone else's group while a worker is
// left to kill.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
