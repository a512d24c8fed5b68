//go:build !linux

package nginx

import (
	"os"
	"os/exec"
	"syscall"
)

const sigQuit = syscall.SIGQUIT

func setProcAttr(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.Process.Signal(os.Signal(sig))
}

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
}
