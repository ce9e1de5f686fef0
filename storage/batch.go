package storage

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes committed in one transaction.
const maxGroup = 1000

// groupCall is one write waiting for the group committer.
type groupCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

// errSolo asks a caller to run its function in its own transaction: it
// failed inside a group, which was retried without it.
var errSolo = errors.New("storage: run alone")

// committer is a group commit writer. Unlike bbolt's db.Batch, which waits
// MaxBatchDelay (10 ms) for company before every commit, it commits at once
// when idle and, while a commit (and its fsync) is running, gathers every
// write that arrives into the next transaction. A lone write therefore costs
// one fsync; concurrent writes share one.
type committer struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []groupCall
	running bool
	idle    sync.WaitGroup // counts the running flush goroutine
}

// batch runs fn in a shared read-write transaction. fn may run more than
// once (alone, after a group it was part of failed), so it must be
// idempotent apart from its effect on the transaction, as with db.Batch.
func (c *committer) batch(fn func(*bolt.Tx) error) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	c.queue = append(c.queue, groupCall{fn: fn, err: ch})
	if !c.running {
		c.running = true
		c.idle.Add(1)
		go c.flush()
	}
	c.mu.Unlock()
	err := <-ch
	if err == errSolo {
		err = c.db.Update(fn)
	}
	return err
}

// flush commits queued writes, group by group, until the queue is empty,
// then exits. At most one flush runs at a time.
func (c *committer) flush() {
	defer c.idle.Done()
	for {
		c.mu.Lock()
		calls := c.queue
		if len(calls) > maxGroup {
			calls = calls[:maxGroup:maxGroup]
			c.queue = c.queue[maxGroup:]
		} else {
			c.queue = nil
		}
		if len(calls) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.commit(calls)
	}
}

// commit runs calls in one transaction. A call that fails is taken out and
// told to run alone; the others are retried together.
func (c *committer) commit(calls []groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range calls {
				if err := safeCall(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].err <- errSolo
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, call := range calls {
			call.err <- err
		}
		return
	}
}

// batch runs a write through group commit, or through db.Batch when
// Options.MaxBatchDelay asked for it.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	if s.group == nil {
		return s.db.Batch(fn)
	}
	return s.group.batch(fn)
}

// wait blocks until no flush is running (used by Close).
func (c *committer) wait() { c.idle.Wait() }

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("storage: panic in write: %v", p)
		}
	}()
	return fn(tx)
}
