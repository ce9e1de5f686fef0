package storage

import (
	"sync"
	"unsafe"
)

// DefaultHistoryCacheBytes is the default budget of the history cache.
const DefaultHistoryCacheBytes = 16 << 20

// historyCache keeps the decoded tail of recently read conversations, so a
// turn decodes only the records written since the conversation's previous
// turn instead of its whole history window.
//
// Entries are immutable once stored (an update stores a new entry) and are
// validated against the store on every use: an entry is used only for the
// same generation, and only if the conversation's message sequence has not
// gone backwards. Records are only ever appended, except by ForgetUser,
// which empties the cache; the epoch makes sure a read that started before
// such a deletion never stores what it read.
//
// When full, it evicts a random entry: with more active conversations than
// fit, turns cycle through them, and least-recently-used eviction would then
// evict every entry just before its next use; random eviction keeps a hit
// rate of about budget / working set.
type historyCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	epoch uint64
	byKey map[string]*histEntry
}

type histEntry struct {
	key   string
	gen   uint64
	seq   uint64   // the messages bucket's sequence when recs was read
	all   bool     // recs holds every record of the generation
	recs  []Record // oldest first
	bytes int64
}

func newHistoryCache(maxBytes int64) *historyCache {
	return &historyCache{max: maxBytes, byKey: map[string]*histEntry{}}
}

// get returns the entry for key (or nil) and the current epoch.
func (c *historyCache) get(key string) (*histEntry, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[key], c.epoch
}

// put stores e unless the cache was invalidated since epoch was read, or an
// entry read later is already there.
func (c *historyCache) put(epoch uint64, e *histEntry) {
	e.bytes = entryBytes(e)
	if e.bytes > c.max/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if old, ok := c.byKey[e.key]; ok {
		if old.gen == e.gen && old.seq > e.seq {
			return
		}
		c.size -= old.bytes
	}
	c.byKey[e.key] = e
	c.size += e.bytes
	for key, victim := range c.byKey { // map order is random
		if c.size <= c.max {
			break
		}
		if key != e.key {
			delete(c.byKey, key)
			c.size -= victim.bytes
		}
	}
}

// drop forgets one conversation.
func (c *historyCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.size -= e.bytes
		delete(c.byKey, key)
	}
}

// clear empties the cache and starts a new epoch.
func (c *historyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.byKey)
	c.size = 0
}

var (
	recordSize     = int64(unsafe.Sizeof(Record{}))
	attachmentSize = int64(unsafe.Sizeof(AttachmentRef{}))
)

func entryBytes(e *histEntry) int64 {
	n := int64(len(e.key)) + 128
	for i := range e.recs {
		r := &e.recs[i]
		n += recordSize + int64(len(r.Text)+len(r.Author)+len(r.AuthorName)+len(r.MessageID)+len(r.Model)+len(r.Error))
		for j := range r.Attachments {
			a := &r.Attachments[j]
			n += attachmentSize + int64(len(a.Name)+len(a.MIMEType)+len(a.Ref))
		}
		for _, st := range r.Steps {
			n += 64 + int64(len(st.Text))
			for _, c := range st.Calls {
				n += 64 + int64(len(c.ID)+len(c.Name)+len(c.Args))
			}
			for _, res := range st.Results {
				n += 64 + int64(len(res.CallID)+len(res.Name)+len(res.Content))
			}
		}
	}
	return n
}
