package storage

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxGroup bounds the writes committed in one transaction.
const maxGroup = 1000

// lazyDelay is how long a lazy write (MarkSeen) waits for another write to
// share its commit before it is committed alone.
const lazyDelay = 50 * time.Millisecond

// groupCall is one write waiting for the group committer.
type groupCall struct {
	fn   func(*bolt.Tx) error
	err  chan error
	lazy bool
}

// errSolo asks a caller to run its function in its own transaction: it
// failed inside a group, which was retried without it.
var errSolo = errors.New("storage: run alone")

// committer is a group commit writer. Unlike bbolt's db.Batch, which waits
// MaxBatchDelay (10 ms) for company before every commit, it commits at once
// when idle and, while a commit (and its fsync) is running, gathers every
// write that arrives into the next transaction. A lone write therefore costs
// one fsync; concurrent writes share one.
//
// Lazy writes (event ids from MarkSeen, which the engine persists in the
// background) do not start a commit by themselves: they ride along with the
// next ordinary write — typically the turn they belong to, milliseconds
// later — or are committed alone after lazyDelay. A turn then costs one
// commit instead of two.
type committer struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []groupCall
	eager   int // queued calls that are not lazy
	running bool
	closing bool
	wake    chan struct{}       // capacity 1: an eager write was queued
	idle    sync.WaitGroup      // counts the running flush goroutine
	delay   time.Duration       // lazyDelay (tests change it)
	observe func(time.Duration) // Options.ObserveCommit; nil: not timed
}

func newCommitter(db *bolt.DB) *committer {
	return &committer{db: db, wake: make(chan struct{}, 1), delay: lazyDelay}
}

// batch runs fn in a shared read-write transaction. fn may run more than
// once (alone, after a group it was part of failed), so it must be
// idempotent apart from its effect on the transaction, as with db.Batch.
// A lazy call waits up to lazyDelay for company (see committer).
func (c *committer) batch(fn func(*bolt.Tx) error, lazy bool) error {
	ch := make(chan error, 1)
	c.mu.Lock()
	c.queue = append(c.queue, groupCall{fn: fn, err: ch, lazy: lazy})
	if !lazy {
		c.eager++
		c.poke()
	}
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
		if len(c.queue) > 0 && c.eager == 0 && !c.closing {
			// Only lazy writes: give an ordinary write the chance to carry them.
			c.mu.Unlock()
			t := time.NewTimer(c.delay)
			select {
			case <-c.wake:
			case <-t.C:
			}
			t.Stop()
			c.mu.Lock()
		}
		select { // a wake-up for writes this group takes
		case <-c.wake:
		default:
		}
		calls := c.queue
		if len(calls) > maxGroup {
			calls = calls[:maxGroup:maxGroup]
			c.queue = c.queue[maxGroup:]
		} else {
			c.queue = nil
		}
		c.eager = 0
		for _, call := range c.queue {
			if !call.lazy {
				c.eager++
			}
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
		var began time.Time
		if c.observe != nil {
			began = time.Now()
		}
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range calls {
				if err := safeCall(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if c.observe != nil {
			c.observe(time.Since(began))
		}
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
	return s.group.batch(fn, false)
}

// lazyBatch is batch for writes that may wait up to lazyDelay to share a
// commit with the next ordinary write.
func (s *Store) lazyBatch(fn func(*bolt.Tx) error) error {
	if s.group == nil {
		return s.db.Batch(fn)
	}
	return s.group.batch(fn, true)
}

// poke wakes a flush waiting for company; c.mu must be held.
func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close commits what is queued without waiting and returns when no flush
// is running (used by Close).
func (c *committer) close() {
	c.mu.Lock()
	c.closing = true
	c.poke()
	c.mu.Unlock()
	c.idle.Wait()
}

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("storage: panic in write: %v", p)
		}
	}()
	return fn(tx)
}
