//go:build !linux

package registry

import (
	"os"
	"os/exec"
	"syscall"
)

const sigTerm = syscall.SIGTERM

func setProcAttr(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.Process.Signal(os.Signal(sig))
}

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
}
