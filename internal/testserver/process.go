package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// FindBinary returns the path of the program name: from PATH, else the
// first of candidates (full paths) that is an executable file. Packaged
// servers often live in sbin directories or $GOBIN, outside an
// unprivileged user's PATH.
func FindBinary(name string, candidates ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// SkipWithout skips the test when a server binary was not found, or fails
// it when the CI environment variable is set, so that CI cannot pass by
// skipping. notInstalled says what is missing and how to install it.
func SkipWithout(t testing.TB, found bool, notInstalled string) {
	t.Helper()
	if found {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(notInstalled)
	}
	t.Skip(notInstalled)
}

// Process is a server a test runs: its collected output and when it
// exited. It leads its own process group, so that its workers go with it,
// and the kernel sends it deathSignal if the test binary dies without
// running its cleanups.
type Process struct {
	cmd    *exec.Cmd
	output *Buffer
	exited chan struct{}
}

// StartProcess starts cmd, collecting its stdout and stderr.
func StartProcess(cmd *exec.Cmd, deathSignal syscall.Signal) (*Process, error) {
	p := &Process{cmd: cmd, output: &Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	setProcAttr(cmd, deathSignal)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// State describes how the process ended; nil while it runs.
func (p *Process) State() *os.ProcessState {
	select {
	case <-p.exited:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Output returns what the process has printed so far.
func (p *Process) Output() string { return p.output.String() }

// Stop sends sig to the process group unless the process has exited,
// waits up to grace for it to exit, then kills whatever is left of the
// group and waits for the process.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-p.exited:
	default:
		signalGroup(p.cmd, sig)
		select {
		case <-p.exited:
		case <-time.After(grace):
		}
	}
	killGroup(p.cmd)
	<-p.exited
}
