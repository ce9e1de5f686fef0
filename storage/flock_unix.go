//go:build unix

package storage

import (
	"os"
	"syscall"
)

// tryLock takes f's exclusive advisory lock (the one bbolt takes) without
// waiting; it fails when another process holds the file.
func tryLock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
