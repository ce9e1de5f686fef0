package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MarkSeen records that event id was processed and keeps it for ttl. It
// returns true the first time an (unexpired) id is seen and false for a
// duplicate. The write is lazy: it shares the commit of the next ordinary
// write (such as the turn the event starts) and is committed alone after at
// most 50 ms, so MarkSeen may take that long to return; callers that need
// the answer at once check Seen first and persist with MarkSeen in the
// background, as the engine does.
func (s *Store) MarkSeen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	now := s.now()
	exp := now.Add(ttl).UnixNano()
	k := []byte(id)
	// Fast path: a read transaction answers most duplicates without a write.
	if seen, err := s.Seen(ctx, id); err == nil && seen {
		return false, nil
	}
	var first bool
	err := s.lazyBatch(func(tx *bolt.Tx) error {
		var err error
		first, err = markSeenTx(tx, k, now, exp)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("storage: mark seen: %w", err)
	}
	return first, nil
}

// PruneSeen deletes expired event ids, at most limit of them (0 = all), and
// returns how many it deleted.
func (s *Store) PruneSeen(ctx context.Context, limit int) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	now := uint64(s.now().UnixNano())
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		idx, seen := tx.Bucket(bucketSeenExp), tx.Bucket(bucketSeen)
		c := idx.Cursor()
		for k, _ := c.First(); k != nil && len(k) >= 8 && binary.BigEndian.Uint64(k[:8]) <= now; k, _ = c.First() {
			if limit > 0 && n >= limit {
				break
			}
			id := append([]byte(nil), k[8:]...)
			if err := idx.Delete(k); err != nil {
				return err
			}
			if v := seen.Get(id); len(v) == 8 && binary.BigEndian.Uint64(v) <= now {
				if err := seen.Delete(id); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("storage: prune seen: %w", err)
	}
	return n, nil
}

// Seen reports whether event id was marked and has not expired. It only
// reads, so it is cheap enough for every incoming event.
func (s *Store) Seen(ctx context.Context, id string) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	now := s.now().UnixNano()
	var seen bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSeen).Get([]byte(id)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now {
			seen = true
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storage: seen: %w", err)
	}
	return seen, nil
}

// markSeenTx records event id k until exp (unix nanoseconds) in tx; first
// is false when an unexpired record was already there.
func markSeenTx(tx *bolt.Tx, k []byte, now time.Time, exp int64) (first bool, err error) {
	seen := tx.Bucket(bucketSeen)
	if v := seen.Get(k); len(v) == 8 {
		old := int64(binary.BigEndian.Uint64(v))
		if old > now.UnixNano() {
			return false, nil
		}
		if err := tx.Bucket(bucketSeenExp).Delete(append(u64(uint64(old)), k...)); err != nil {
			return false, err
		}
	}
	if err := seen.Put(k, u64(uint64(exp))); err != nil {
		return false, err
	}
	return true, tx.Bucket(bucketSeenExp).Put(append(u64(uint64(exp)), k...), nil)
}
