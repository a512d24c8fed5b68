package registry

import (
	"os/exec"
	"syscall"
)

const sigTerm = syscall.SIGTERM

// setProcAttr puts the registry in its own process group and has the kernel
// stop it if the test binary dies without running its cleanups.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
}

// killGroup kills the group the registry leads; its pid names the group
// while any member lives.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
