//go:build !linux

package testserver

import (
	"os"
	"os/exec"
	"syscall"
)

func setProcAttr(*exec.Cmd, syscall.Signal) {}

func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	cmd.Process.Signal(os.Signal(sig))
}

func killGroup(cmd *exec.Cmd) {
	cmd.Process.Kill()
}
