//go:build !unix

package mcp

import "os/exec"

// setProcGroup does nothing here: the child is stopped on its own.
func setProcGroup(*exec.Cmd) {}

// killProcGroup does nothing here.
func killProcGroup(*exec.Cmd) {}
