// Package storage keeps cometbot's durable state in one bbolt file:
// conversation history, attachment bytes, per-scope settings, processed event
// ids, usage counters and the last good model catalog.
//
// Layout (schema version 1):
//
//	meta                         schema -> uint64 big-endian
//	convs/<conversation key>     gen -> uint64; g<gen> -> bucket of records keyed by NextSequence (big-endian)
//	settings                     <scope key> -> JSON Settings
//	seen                         <event id> -> expiry (unix nanoseconds, big-endian)
//	seen_exp                     <expiry><event id> -> empty (an index for pruning)
//	usage                        <period>|<workspace>|<kind>|<id> -> JSON Counter
//	catalog                      data -> last good catalog JSON
//	pending                      <turn id> -> JSON PendingTurn (turns started and not ended)
//	blobs/<sha256, 32 bytes>     data -> attachment bytes (content-addressed, stored once; a bucket per
//	                             blob so that no other value shares its leaf page and gets rewritten with it)
//	blob_refs                    <sha256> -> uint64: how many conversations reference the blob (deleted at 0, with the blob)
//	blob_convs/<conversation key>
//	                             bytes -> uint64: total size of the blobs the conversation references;
//	                             n<seq> -> sha256|size (uint64): its references, oldest first (seq from NextSequence);
//	                             h<sha256> -> seq: the index of the same references by hash
//
// Integers are big-endian. The blob buckets are created at Open, so files
// written before attachments existed open unchanged (no schema change).
//
// Values read inside a transaction are copied out before it ends.
package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the layout this build reads and writes.
const SchemaVersion = 1

var (
	bucketMeta      = []byte("meta")
	bucketConvs     = []byte("convs")
	bucketSettings  = []byte("settings")
	bucketSeen      = []byte("seen")
	bucketSeenExp   = []byte("seen_exp")
	bucketUsage     = []byte("usage")
	bucketCatalog   = []byte("catalog")
	bucketBlobs     = []byte("blobs")
	bucketBlobRefs  = []byte("blob_refs")
	bucketBlobConvs = []byte("blob_convs")

	keySchema = []byte("schema")
	keyGen    = []byte("gen")
	keyData   = []byte("data")
)

// ErrNewerSchema means the database was written by a newer cometbot.
var ErrNewerSchema = errors.New("storage: database schema is newer than this build")

// ErrLocked means another process holds the database file.
var ErrLocked = errors.New("storage: database is locked by another process")

// Options tunes Open.
type Options struct {
	// Timeout is how long to wait for the file lock; default 2s.
	Timeout time.Duration
	// NoSync skips fsync on commit (tests and benchmarks only: unsafe on power loss).
	NoSync bool
	// MaxBatchDelay, when positive, makes every write wait up to this long
	// to share its transaction (and fsync) with concurrent writes (bbolt's
	// db.Batch). The default, 0, is group commit: a write commits at once
	// when no commit is running, and writes that arrive during a commit
	// share the next one — no added delay when idle, one fsync for many
	// writes under load.
	MaxBatchDelay time.Duration
	// HistoryCacheBytes bounds the cache of recently read conversation
	// windows (History then decodes only new records); 0 means
	// DefaultHistoryCacheBytes, negative turns the cache off.
	HistoryCacheBytes int64
	// MaxConversationBlobBytes caps the attachment bytes one conversation
	// keeps in the blob store (see PutBlob): past it, the conversation's
	// oldest attachments are dropped. 0 means
	// DefaultMaxConversationBlobBytes (64 MiB); negative means no cap.
	MaxConversationBlobBytes int64
	// ObserveCommit, when set, is told how long each group commit took
	// (the transaction and its fsync; for metrics). It is not called with
	// MaxBatchDelay, whose commits bbolt runs.
	ObserveCommit func(time.Duration)
}

// Store is the bbolt-backed store. It is safe for concurrent use.
type Store struct {
	db    *bolt.DB
	path  string
	now   func() time.Time
	group *committer // nil: writes use db.Batch with Options.MaxBatchDelay
	hist  *historyCache

	maxConvBlob int64 // Options.MaxConversationBlobBytes; <= 0: no cap
}

// Open opens (creating if needed) the database at path, checks its schema
// version and creates the buckets. A missing file is created (first start);
// a file that exists but is empty, truncated or damaged is refused with a
// *CorruptError (errors.Is ErrCorrupt) naming it — never replaced by an
// empty database, and never a panic.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: create directory %s: %w", dir, err)
		}
	}
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, now: time.Now, maxConvBlob: opts.MaxConversationBlobBytes}
	if s.maxConvBlob == 0 {
		s.maxConvBlob = DefaultMaxConversationBlobBytes
	}
	switch {
	case opts.HistoryCacheBytes == 0:
		s.hist = newHistoryCache(DefaultHistoryCacheBytes)
	case opts.HistoryCacheBytes > 0:
		s.hist = newHistoryCache(opts.HistoryCacheBytes)
	}
	if opts.MaxBatchDelay > 0 {
		db.MaxBatchDelay = opts.MaxBatchDelay
	} else {
		s.group = newCommitter(db)
		s.group.observe = opts.ObserveCommit
	}
	if err := guard(path, s.init); err != nil {
		if s.group != nil {
			s.group.close()
		}
		closeQuietly(db)
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("storage: create meta: %w", err)
		}
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 8 {
				return &CorruptError{Path: s.path, Reason: "corrupted (bad schema version record)"}
			}
			if got := binary.BigEndian.Uint64(v); got > SchemaVersion {
				return fmt.Errorf("%w: %s has schema %d, this build understands up to %d; upgrade cometbot or use another COMETBOT_DB", ErrNewerSchema, s.path, got, SchemaVersion)
			}
		}
		if err := meta.Put(keySchema, u64(SchemaVersion)); err != nil {
			return fmt.Errorf("storage: write schema: %w", err)
		}
		for _, b := range [][]byte{bucketConvs, bucketSettings, bucketSeen, bucketSeenExp, bucketUsage, bucketCatalog, bucketBlobs, bucketBlobRefs, bucketBlobConvs, bucketPending} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("storage: create %s: %w", b, err)
			}
		}
		if err := dropIncompleteBlobs(tx); err != nil {
			return fmt.Errorf("storage: drop incomplete attachments: %w", err)
		}
		return nil
	})
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("storage: close: %w", err)
	}
	return nil
}

// SchemaVersionOf returns the schema version recorded in the database.
func (s *Store) SchemaVersionOf() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keySchema); len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		return nil
	})
	return v, err
}

// setSchemaVersion is for tests of the version guard.
func (s *Store) setSchemaVersion(v uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(v)) })
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// --- Settings -------------------------------------------------------------

// Settings are the per-scope choices people make with slash commands. Nil or
// empty fields are unset and inherit from the enclosing scope.
type Settings struct {
	Model           string   `json:"model,omitempty"`
	SystemPrompt    *string  `json:"system_prompt,omitempty"`
	Temperature     *float64 `json:"temperature,omitempty"`
	MaxOutputTokens *int     `json:"max_output_tokens,omitempty"`
	// Tools, when set, is the channel's tool allow-list (set by an admin
	// with /tools); WebSearch turns built-in web search on or off.
	Tools     *[]string `json:"tools,omitempty"`
	WebSearch *bool     `json:"web_search,omitempty"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Settings returns the settings stored for scope; ok is false when none are.
func (s *Store) Settings(ctx context.Context, scope string) (st Settings, ok bool, err error) {
	if err := ctxErr(ctx); err != nil {
		return st, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSettings).Get([]byte(scope))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &st) // Unmarshal copies: nothing escapes the tx
	})
	if err != nil {
		return Settings{}, false, fmt.Errorf("storage: read settings: %w", err)
	}
	return st, ok, nil
}

// UpdateSettings applies fn to the scope's settings atomically.
func (s *Store) UpdateSettings(ctx context.Context, scope string, fn func(*Settings)) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSettings)
		var st Settings
		if v := b.Get([]byte(scope)); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
		}
		fn(&st)
		st.UpdatedAt = s.now()
		data, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return b.Put([]byte(scope), data)
	})
	if err != nil {
		return fmt.Errorf("storage: write settings: %w", err)
	}
	return nil
}

// DeleteSettings removes the scope's settings.
func (s *Store) DeleteSettings(ctx context.Context, scope string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSettings).Delete([]byte(scope)) }); err != nil {
		return fmt.Errorf("storage: delete settings: %w", err)
	}
	return nil
}

// --- Catalog -----------------------------------------------

// LoadCatalog returns the last saved model catalog, or nil.
func (s *Store) LoadCatalog(ctx context.Context) ([]byte, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCatalog).Get(keyData); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: load catalog: %w", err)
	}
	return out, nil
}

// SaveCatalog stores the last good model catalog.
func (s *Store) SaveCatalog(ctx context.Context, data []byte) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCatalog).Put(keyData, data) }); err != nil {
		return fmt.Errorf("storage: save catalog: %w", err)
	}
	return nil
}
