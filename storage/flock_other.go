//go:build !unix

package storage

import "os"

// tryLock is a no-op where bbolt's advisory lock is not flock: stop the bot
// before restoring.
func tryLock(*os.File) error { return nil }
