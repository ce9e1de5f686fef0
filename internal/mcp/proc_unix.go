//go:build unix

package mcp

import (
	"os/exec"
	"syscall"
)

// setProcGroup starts cmd in a process group of its own, so that
// killProcGroup reaches the processes it spawned (npx → node, uvx → python).
func setProcGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcGroup kills whatever is left of cmd's process group once cmd has
// been stopped.
func killProcGroup(cmd *exec.Cmd) {
	if cmd.Process != nil && cmd.Process.Pid > 0 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
