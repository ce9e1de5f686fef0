package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

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
						return tx.Bucket(bucketKV).Put(fmt.Appendf(nil, "k%05d", i), []byte("v"))
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
					got := tx.Bucket(bucketKV).Get(fmt.Appendf(nil, "k%05d", i)) != nil
					if want := !(tc.failEv > 0 && i%tc.failEv == 0); got != want {
						t.Errorf("key %d stored = %v, want %v", i, got, want)
					}
				}
				return nil
			})
		})
	}
}
