package storage

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

var keyProbe = []byte("probe")

// probeBytes is the size of a probe write: about a large turn's records, so
// a probe needs new pages much like a turn does (a tiny write can succeed on
// a full disk by reusing free pages inside the file).
const probeBytes = 64 << 10

// Probe tells whether the store takes a turn-sized write again after a
// failure (a full disk, a read-only remount): it commits probeBytes in the
// meta bucket through the same commit path as turns, then deletes them.
// Success does not prove that a larger write will fit.
func (s *Store) Probe(ctx context.Context) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	ballast := make([]byte, probeBytes)
	if err := s.batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyProbe, ballast) }); err != nil {
		return fmt.Errorf("storage: probe write: %w", err)
	}
	if err := s.batch(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyProbe) }); err != nil {
		return fmt.Errorf("storage: probe write: %w", err)
	}
	return nil
}
