package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// File-level operations: backups, restores and compaction.
//
// A running bot holds an exclusive lock on its database file, so no other
// process can open it, even read-only. A hot backup is therefore taken by
// the running process itself (Store.Backup, served on the bot's loopback
// admin endpoint); BackupFile, Restore and Compact work on a file no process
// has open and fail with ErrLocked otherwise.

// Backup writes a consistent copy of the whole database to w: the state as
// of the start of one read transaction, which writers do not wait for
// (except to grow the file's memory map, see bbolt). It returns the bytes
// written. The copy is a complete database file.
func (s *Store) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("storage: backup: %w", err)
	}
	return n, nil
}

// BackupSize returns the size in bytes that Backup would write now.
func (s *Store) BackupSize() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// openLocked opens the bbolt file at path, which must exist, taking its
// exclusive lock (so that no bot runs on it meanwhile); a file held by
// another process fails at once with ErrLocked.
func openLocked(path string, readOnly bool) (*bolt.DB, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("storage: %s is not a regular file", path)
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond, ReadOnly: readOnly, FreelistType: bolt.FreelistMapType})
		return oerr
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	case err != nil && isFormatError(err):
		return nil, &CorruptError{Path: path, Reason: "corrupted (" + err.Error() + ")"}
	case err != nil:
		return nil, err
	}
	if err := checkSize(db, path); err != nil {
		closeQuietly(db)
		return nil, err
	}
	return db, nil
}

// BackupFile copies the database at path, which no process may have open
// (else ErrLocked: ask the running bot, see Store.Backup), to dst: written
// to a temporary file, synced, then renamed over dst.
func BackupFile(path, dst string) (int64, error) {
	db, err := openLocked(path, true)
	if err != nil {
		return 0, err
	}
	defer closeQuietly(db)
	var n int64
	err = writeFileAtomic(dst, func(w io.Writer) error {
		return guard(path, func() error {
			return db.View(func(tx *bolt.Tx) error {
				var err error
				n, err = tx.WriteTo(w)
				return err
			})
		})
	})
	return n, err
}

// writeFileAtomic writes dst through fill into a temporary file next to it,
// syncs it and renames it over dst; on error dst is untouched.
func writeFileAtomic(dst string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	ok = true
	return nil
}

// VerifyFile opens the database file at path read-only and checks it: its
// schema must not be newer than this build (ErrNewerSchema) and bbolt's
// consistency check must pass (*CorruptError). It returns the schema version.
func VerifyFile(path string) (uint64, error) {
	db, err := openLocked(path, true)
	if err != nil {
		return 0, err
	}
	defer closeQuietly(db)
	return verifyDB(db, path)
}

func verifyDB(db *bolt.DB, path string) (uint64, error) {
	var schema uint64
	var problems []string
	err := guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return &CorruptError{Path: path, Reason: "not a cometbot database (no meta bucket)"}
			}
			v := meta.Get(keySchema)
			if len(v) != 8 {
				return &CorruptError{Path: path, Reason: "not a cometbot database (no schema version)"}
			}
			schema = binary.BigEndian.Uint64(v)
			if schema > SchemaVersion {
				return fmt.Errorf("%w: %s has schema %d, this build understands up to %d", ErrNewerSchema, path, schema, SchemaVersion)
			}
			for e := range tx.Check() {
				if len(problems) < 3 {
					problems = append(problems, e.Error())
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if len(problems) > 0 {
		return 0, &CorruptError{Path: path, Reason: fmt.Sprintf("corrupted: %v", problems)}
	}
	return schema, nil
}

// Restore replaces the database at path with the backup src. The bot must
// be stopped (ErrLocked otherwise). src is verified first (VerifyFile: a
// newer schema or a damaged file is refused and path is left alone); the
// file at path, if any, is kept as path+".bak" (replacing an older one).
func Restore(src, path string) error {
	if _, err := VerifyFile(src); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		// Hold the lock of the current file while it is moved aside, so
		// that a bot running on it is detected.
		lf, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		defer lf.Close()
		if err := tryLock(lf); err != nil {
			return fmt.Errorf("%w: %s (stop cometbot before restoring)", ErrLocked, path)
		}
		if err := os.Rename(path, path+".bak"); err != nil {
			return fmt.Errorf("storage: keep the old database: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("storage: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return writeFileAtomic(path, func(w io.Writer) error {
		if _, err := io.Copy(w, in); err != nil {
			return fmt.Errorf("storage: copy %s: %w", src, err)
		}
		return nil
	})
}

// CompactResult is what Compact did.
type CompactResult struct {
	// Before and After are the file sizes in bytes.
	Before, After int64
}

// Compact rewrites the database at path into a new file with bbolt's
// compaction (live data only, pages packed), checks the new file and
// swaps it in. The bot must be stopped (ErrLocked otherwise): the old file
// stays locked during the copy and the swap.
func Compact(path string) (CompactResult, error) {
	var res CompactResult
	info, err := os.Stat(path)
	if err != nil {
		return res, fmt.Errorf("storage: %w", err)
	}
	res.Before = info.Size()
	src, err := openLocked(path, false)
	if err != nil {
		return res, err
	}
	defer closeQuietly(src)
	if _, err := verifyDB(src, path); err != nil {
		return res, err
	}
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	fail := func(err error) (CompactResult, error) {
		closeQuietly(dst)
		_ = os.Remove(tmp)
		return res, err
	}
	if err := guard(path, func() error { return bolt.Compact(dst, src, 64<<20) }); err != nil {
		return fail(fmt.Errorf("storage: compact: %w", err))
	}
	if _, err := verifyDB(dst, tmp); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(fmt.Errorf("storage: compact: %w", err))
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return res, fmt.Errorf("storage: compact: %w", err)
	}
	if info, err := os.Stat(path); err == nil {
		res.After = info.Size()
	}
	return res, nil
}

// OpenReadOnly opens the database at path for reading only (ExportUser,
// History and the other reads work; writes fail). No process may have it
// open for writing (ErrLocked otherwise: read a backup instead), and its
// schema must not be newer than this build.
func OpenReadOnly(path string) (*Store, error) {
	db, err := openLocked(path, true)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, now: time.Now}
	var schema []byte
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			if m := tx.Bucket(bucketMeta); m != nil {
				schema = bytes.Clone(m.Get(keySchema))
			}
			for _, b := range [][]byte{bucketConvs, bucketUsage} {
				if tx.Bucket(b) == nil {
					return &CorruptError{Path: path, Reason: "not a cometbot database (no " + string(b) + " bucket)"}
				}
			}
			return nil
		})
	})
	if err == nil && len(schema) == 8 && binary.BigEndian.Uint64(schema) > SchemaVersion {
		err = fmt.Errorf("%w: %s has schema %d, this build understands up to %d", ErrNewerSchema, path, binary.BigEndian.Uint64(schema), SchemaVersion)
	}
	if err != nil {
		closeQuietly(db)
		return nil, err
	}
	return s, nil
}
