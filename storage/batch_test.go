package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestGroupCommit(t *testing.T) {
	errBad := errors.New("bad write")
	for _, tc := range []struct {
		name   string
		writes int
		failEv int // every failEv-th write fails (0 = none)
	}{
		{"one", 1, 0},
		{"many", 300, 0},
		{"some fail", 300, 7},
		{"more than a group", 2500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, filepath.Join(t.TempDir(), "g.db"))
			if s.group == nil {
				t.Fatal("default store does not use group commit")
			}
			var wg sync.WaitGroup
			errs := make([]error, tc.writes)
			for i := range tc.writes {
				wg.Go(func() {
					errs[i] = s.batch(func(tx *bolt.Tx) error {
						if tc.failEv > 0 && i%tc.failEv == 0 {
							return errBad
						}
						return tx.Bucket(bucketSettings).Put(fmt.Appendf(nil, "k%05d", i), []byte("v"))
					})
				})
			}
			wg.Wait()
			for i, err := range errs {
				want := tc.failEv > 0 && i%tc.failEv == 0
				if want != errors.Is(err, errBad) || (!want && err != nil) {
					t.Fatalf("write %d: err = %v, want failure %v", i, err, want)
				}
			}
			_ = s.db.View(func(tx *bolt.Tx) error {
				for i := range tc.writes {
					got := tx.Bucket(bucketSettings).Get(fmt.Appendf(nil, "k%05d", i)) != nil
					if want := !(tc.failEv > 0 && i%tc.failEv == 0); got != want {
						t.Errorf("key %d stored = %v, want %v", i, got, want)
					}
				}
				return nil
			})
		})
	}
}

func TestLazyWriteRidesAlong(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "lazy.db"))
	s.group.delay = time.Hour // only an ordinary write (or Close) may commit it
	var lazyTx, eagerTx int
	lazyDone := make(chan error, 1)
	go func() {
		lazyDone <- s.lazyBatch(func(tx *bolt.Tx) error {
			lazyTx = tx.ID()
			return tx.Bucket(bucketSettings).Put([]byte("lazy"), []byte("1"))
		})
	}()
	for queued := false; !queued; {
		s.group.mu.Lock()
		queued = len(s.group.queue) == 1
		s.group.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-lazyDone:
		t.Fatalf("lazy write committed alone: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := s.batch(func(tx *bolt.Tx) error {
		eagerTx = tx.ID()
		return tx.Bucket(bucketSettings).Put([]byte("eager"), []byte("1"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-lazyDone; err != nil {
		t.Fatal(err)
	}
	if lazyTx != eagerTx {
		t.Fatalf("lazy write in tx %d, ordinary write in tx %d: want one commit", lazyTx, eagerTx)
	}

	// Alone, a lazy write is committed by Close at the latest.
	go func() {
		_, err := s.MarkSeen(context.Background(), "ev-close", time.Hour)
		lazyDone <- err
	}()
	for queued := false; !queued; {
		s.group.mu.Lock()
		queued = len(s.group.queue) == 1
		s.group.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-lazyDone; err != nil {
		t.Fatalf("lazy write at Close: %v", err)
	}
}
