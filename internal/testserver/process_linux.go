package testserver

import (
	"os/exec"
	"syscall"
)

func setProcAttr(cmd *exec.Cmd, deathSignal syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSignal}
}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
}

// killGroup kills the leader and every member of the group it leads. The
// group id is the leader's pid; the kernel keeps it allocated while any
// member lives, so it cannot name someone else's group while a member is
// left to kill.
func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
