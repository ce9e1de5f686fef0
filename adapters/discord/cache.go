package discord

import (
	"sync"

	"github.com/bwmarrin/discordgo"
)

// boundedMap is a concurrency-safe map holding at most max entries; when full,
// the oldest inserted key is evicted (FIFO). All operations are O(1).
type boundedMap[V any] struct {
	mu    sync.Mutex
	max   int
	m     map[string]V
	order []string // ring of inserted keys
	next  int
}

func newBoundedMap[V any](max int) *boundedMap[V] {
	return &boundedMap[V]{max: max, m: make(map[string]V), order: make([]string, max)}
}

// Get returns the value for key.
func (b *boundedMap[V]) Get(key string) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[key]
	return v, ok
}

// Put stores key; a new key may evict the oldest one.
func (b *boundedMap[V]) Put(key string, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.putLocked(key, v)
}

// PutIfAbsent stores key unless present and reports whether it stored it.
func (b *boundedMap[V]) PutIfAbsent(key string, v V) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[key]; ok {
		return false
	}
	b.putLocked(key, v)
	return true
}

func (b *boundedMap[V]) putLocked(key string, v V) {
	if _, ok := b.m[key]; !ok {
		if old := b.order[b.next]; old != "" {
			delete(b.m, old)
		}
		b.order[b.next] = key
		b.next = (b.next + 1) % b.max
	}
	b.m[key] = v
}

// Delete removes key (its ring slot is reused later).
func (b *boundedMap[V]) Delete(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, key)
}

// Len returns the number of entries.
func (b *boundedMap[V]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// chanInfo is what the adapter needs to know about a channel.
type chanInfo struct {
	Type   discordgo.ChannelType
	Guild  string
	Parent string // parent channel of a thread
	Name   string
}

func (c chanInfo) isThread() bool {
	switch c.Type {
	case discordgo.ChannelTypeGuildPublicThread, discordgo.ChannelTypeGuildPrivateThread, discordgo.ChannelTypeGuildNewsThread:
		return true
	}
	return false
}

// threadable reports whether message threads can be started in the channel.
func (c chanInfo) threadable() bool {
	return c.Type == discordgo.ChannelTypeGuildText || c.Type == discordgo.ChannelTypeGuildNews
}

func infoOf(c *discordgo.Channel) chanInfo {
	return chanInfo{Type: c.Type, Guild: c.GuildID, Parent: c.ParentID, Name: c.Name}
}

// roleInfo is what the adapter needs to know about a role.
type roleInfo struct {
	Name    string
	Managed bool
}
