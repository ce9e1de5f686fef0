package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrCorrupt matches (errors.Is) every error about a database file that
// exists but is not a usable database: empty, truncated or damaged.
var ErrCorrupt = errors.New("storage: the database file is corrupted")

// CorruptError says which database file is unusable and why. Open never
// starts an empty database over a file that exists: the operator restores a
// backup or moves the file aside.
type CorruptError struct {
	// Path is the database file.
	Path string
	// Reason says what is wrong, e.g. "empty (0 bytes)".
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("the database file %s is %s — restore a backup; see \"cometbot doctor\"", e.Path, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// RestoreAdvice says how to recover from a corrupted database file.
func RestoreAdvice(path string) string {
	return fmt.Sprintf("stop cometbot, copy your latest backup of the database over %[1]s (cometbot restore BACKUP_FILE checks it and does this), and start it again. "+
		"With no backup, move the file aside (mv %[1]s %[1]s.corrupt): cometbot then starts with an empty "+
		"database, and history, settings and usage records are lost", path)
}

// openBolt opens the bbolt file at path and, when the file existed, checks
// that it is not truncated. A corrupted file makes bbolt panic (or fault on
// a page past the end of the file) while it opens or reads it; both are
// caught here and reported as a *CorruptError naming the file.
func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	info, statErr := os.Stat(path)
	existed := statErr == nil
	if existed && !info.Mode().IsRegular() {
		return nil, fmt.Errorf("storage: %s is not a regular file; set COMETBOT_DB to a file path", path)
	}
	if existed && info.Size() == 0 {
		return nil, &CorruptError{Path: path, Reason: "empty (0 bytes)"}
	}
	var file *os.File // the descriptor bbolt opened, to release it (and its lock) after a panic
	bo := &bolt.Options{
		Timeout: opts.Timeout, NoSync: opts.NoSync, FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	err = guard(path, func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o600, bo)
		return oerr
	})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) && file != nil {
			_ = file.Close()
		}
		switch {
		case errors.As(err, &ce):
			return nil, err
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, fmt.Errorf("%w: %s (is another cometbot running with the same COMETBOT_DB?)", ErrLocked, path)
		case existed && isFormatError(err):
			return nil, &CorruptError{Path: path, Reason: "corrupted (" + err.Error() + ")"}
		}
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	if existed {
		if err := checkSize(db, path); err != nil {
			closeQuietly(db)
			return nil, err
		}
	}
	return db, nil
}

// isFormatError reports whether bolt.Open failed on the file's content
// rather than on the file system.
func isFormatError(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrVersionMismatch) ||
		errors.Is(err, bolterrors.ErrChecksum) || strings.Contains(err.Error(), "file size too small")
}

// checkSize refuses a file shorter than the data its meta page describes
// (a truncated copy): reading its last pages would fault.
func checkSize(db *bolt.DB, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", path, err)
	}
	var need int64
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error { need = tx.Size(); return nil })
	})
	if err != nil {
		return err
	}
	if need > info.Size() {
		return &CorruptError{Path: path, Reason: fmt.Sprintf("truncated (%d bytes, but its data needs %d)", info.Size(), need)}
	}
	return nil
}

// guard runs fn, turning a panic or a memory fault (a page of the mapped
// file that is not there) into a *CorruptError for path.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &CorruptError{Path: path, Reason: fmt.Sprintf("corrupted (%v)", r)}
		}
	}()
	return fn()
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// Check runs bbolt's full consistency check (every page reachable once,
// keys in order, the free list sound) and returns a *CorruptError listing
// the first problems, or nil. It reads the whole file; writes wait while it
// runs. The check is not interrupted by ctx (bbolt cannot stop it midway),
// ctx is only checked before it starts.
func (s *Store) Check(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := checkSize(s.db, s.path); err != nil {
		return err
	}
	var problems []string
	n := 0
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			for e := range tx.Check() {
				if n++; len(problems) < 3 {
					problems = append(problems, e.Error())
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	reason := "corrupted: " + strings.Join(problems, "; ")
	if n > len(problems) {
		reason += fmt.Sprintf(" (and %d more problems)", n-len(problems))
	}
	return &CorruptError{Path: s.path, Reason: reason}
}
