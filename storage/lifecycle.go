package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	segjson "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"
)

// Bulk deletions (/forget, retention, old generations after /reset) run in
// many small write transactions instead of one: bbolt has one writer at a
// time, so every turn that commits during a bulk deletion waits for the
// transaction in progress. Each chunk stops after chunkRecords deletions,
// chunkScan records looked at, or chunkTime, whichever comes first.
const (
	chunkRecords = 1000
	chunkScan    = 5000
	chunkTime    = 10 * time.Millisecond
)

// chunk is the budget of one bulk-deletion transaction.
type chunk struct {
	start   time.Time
	deleted int
	scanned int
}

func newChunk() *chunk { return &chunk{start: time.Now()} }

// spent reports whether the chunk's transaction should commit now.
func (c *chunk) spent() bool {
	return c.deleted >= chunkRecords || c.scanned >= chunkScan ||
		(c.scanned&63 == 0 && time.Since(c.start) >= chunkTime)
}

// recordMeta is the part of a record the bulk deletions decode.
type recordMeta struct {
	Role        string          `json:"role"`
	Author      string          `json:"author"`
	Time        time.Time       `json:"time"`
	Attachments []AttachmentRef `json:"attachments"`
}

// position is where a chunked walk over the conversations resumes: the
// conversation key, generation bucket key and record key last reached.
type position struct {
	conv, gen, rec []byte
}

// convKeys lists the conversation keys starting with prefix, in one read
// transaction (writers do not wait for it).
func (s *Store) convKeys(prefix string) ([][]byte, error) {
	var keys [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConvs).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && hasPrefix(k, p); k, v = c.Next() {
			if v == nil {
				keys = append(keys, bytes.Clone(k))
			}
		}
		return nil
	})
	return keys, err
}

// releaseRefs drops conversation conv's references to the attachments in
// refs (hex sha256) that no record left in the conversation mentions; the
// blob goes when no conversation references it. Mentions are found in the
// records' raw JSON (a hex sha256 appears nowhere else by chance).
func releaseRefs(tx *bolt.Tx, conv []byte, refs map[string]bool) error {
	if len(refs) == 0 {
		return nil
	}
	cb := tx.Bucket(bucketConvs).Bucket(conv)
	left := make(map[string]bool, len(refs))
	for r := range refs {
		left[r] = true
	}
	if cb != nil {
		err := cb.ForEachBucket(func(g []byte) error {
			return cb.Bucket(g).ForEach(func(_, v []byte) error {
				if len(left) == 0 || !bytes.Contains(v, []byte(`"ref"`)) {
					return nil
				}
				for r := range left {
					if bytes.Contains(v, []byte(r)) {
						delete(left, r)
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	for r := range left {
		if h, ok := refHash(r); ok {
			if err := dropConvBlob(tx, conv, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// ForgetUser deletes every record authored by user in conversations whose
// key starts with prefix, together with the assistant replies that answered
// them (the record that directly follows). It returns how many records it
// deleted. The attachment bytes of the deleted records are dropped from the
// conversation's blob references (and from the blob store unless another
// conversation references them), except bytes that a record left in the same
// conversation also references.
//
// The deletion runs in small transactions (see chunkRecords), so turns keep
// committing while it runs; a message the user sends meanwhile may be kept.
func (s *Store) ForgetUser(ctx context.Context, prefix, user string) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	n, err := s.forgetUser(ctx, prefix, user)
	if s.hist != nil {
		s.hist.clear() // records were deleted: cached windows may hold them
	}
	if err != nil {
		return n, fmt.Errorf("storage: forget user: %w", err)
	}
	return n, nil
}

func (s *Store) forgetUser(ctx context.Context, prefix, user string) (int, error) {
	keys, err := s.convKeys(prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	w := newChunkedWriter(s.db)
	defer w.rollback()
	for _, conv := range keys {
		removed := map[string]bool{}
		pos := position{conv: conv}
		for {
			if err := ctxErr(ctx); err != nil {
				return n, err
			}
			tx, b, err := w.tx()
			if err != nil {
				return n, err
			}
			d, fin, err := forgetChunk(tx, &pos, user, removed, b)
			n += d
			if err != nil {
				return n, err
			}
			if fin {
				// The conversation is done: release the attachments no
				// record left in it mentions, in the same transaction.
				if err := releaseRefs(tx, conv, removed); err != nil {
					return n, err
				}
				if b.spent() {
					if err := w.commit(); err != nil {
						return n, err
					}
				}
				break
			}
			if err := w.commit(); err != nil {
				return n, err
			}
		}
	}
	return n, w.commit()
}

// chunkedWriter runs a bulk deletion as a series of write transactions,
// each with the budget of one chunk; cheap steps (conversations with
// nothing to delete) share a transaction.
type chunkedWriter struct {
	db      *bolt.DB
	cur     *bolt.Tx
	budget  *chunk
	commits int
}

func newChunkedWriter(db *bolt.DB) *chunkedWriter { return &chunkedWriter{db: db} }

// tx returns the open transaction and its budget, beginning one if needed.
func (w *chunkedWriter) tx() (*bolt.Tx, *chunk, error) {
	if w.cur == nil {
		tx, err := w.db.Begin(true)
		if err != nil {
			return nil, nil, err
		}
		w.cur, w.budget = tx, newChunk()
	}
	return w.cur, w.budget, nil
}

// commit commits the open transaction, if any.
func (w *chunkedWriter) commit() error {
	if w.cur == nil {
		return nil
	}
	err := w.cur.Commit()
	w.cur = nil
	w.commits++
	return err
}

// rollback abandons the open transaction, if any (after an error).
func (w *chunkedWriter) rollback() {
	if w.cur != nil {
		_ = w.cur.Rollback()
		w.cur = nil
	}
}

// forgetChunk deletes user's records (and the replies to them) in
// conversation pos.conv from pos onwards, within budget b; done is true
// when the conversation has been walked to its end.
func forgetChunk(tx *bolt.Tx, pos *position, user string, removed map[string]bool, b *chunk) (deleted int, done bool, err error) {
	cb := tx.Bucket(bucketConvs).Bucket(pos.conv)
	if cb == nil {
		return 0, true, nil
	}
	note := func(m *recordMeta) {
		for _, a := range m.Attachments {
			if a.Ref != "" {
				removed[a.Ref] = true
			}
		}
	}
	gc := cb.Cursor()
	var g []byte
	if pos.gen == nil {
		g, _ = gc.First()
	} else {
		g, _ = gc.Seek(pos.gen)
	}
	for ; g != nil; g, _ = gc.Next() {
		msgs := cb.Bucket(g)
		if msgs == nil {
			continue // the gen key, not a generation
		}
		if !bytes.Equal(g, pos.gen) {
			pos.gen, pos.rec = bytes.Clone(g), nil
		}
		var del [][]byte
		mc := msgs.Cursor()
		var mk, mv []byte
		if pos.rec == nil {
			mk, mv = mc.First()
		} else if mk, mv = mc.Seek(pos.rec); mk != nil && bytes.Equal(mk, pos.rec) {
			mk, mv = mc.Next()
		}
		for ; mk != nil; mk, mv = mc.Next() {
			if b.spent() {
				break
			}
			b.scanned++
			pos.rec = bytes.Clone(mk)
			var m recordMeta
			if segjson.Unmarshal(mv, &m) != nil || m.Role != "user" || m.Author != user {
				continue
			}
			note(&m)
			del = append(del, pos.rec)
			b.deleted++
			if nk, nv := mc.Next(); nk != nil {
				var a recordMeta
				if segjson.Unmarshal(nv, &a) == nil && a.Role == "assistant" {
					note(&a)
					pos.rec = bytes.Clone(nk)
					del = append(del, pos.rec)
					b.deleted++
				} else {
					mc.Prev()
				}
			}
		}
		for _, d := range del {
			if err := msgs.Delete(d); err != nil {
				return deleted, false, err
			}
		}
		deleted += len(del)
		if mk != nil {
			return deleted, false, nil // budget spent: resume at pos
		}
	}
	return deleted, true, nil
}

// ForgetUsage deletes the user's usage counters in a workspace (all periods).
// Aggregate counters (channel, model, workspace) keep their totals: they
// identify no one. It returns how many counters it deleted. The counters are
// found in a read transaction and deleted in small write transactions.
func (s *Store) ForgetUsage(ctx context.Context, workspace, user string) (int, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	var del [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, _ []byte) error {
			if usageOf(string(k), workspace, user) {
				del = append(del, bytes.Clone(k))
			}
			return nil
		})
	})
	n := len(del)
	for len(del) > 0 && err == nil {
		part := del[:min(len(del), chunkRecords)]
		del = del[len(part):]
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketUsage)
			for _, k := range part {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return 0, fmt.Errorf("storage: forget usage: %w", err)
	}
	return n, nil
}

// usageOf reports whether usage key k is a user counter of user in
// workspace (any workspace when workspace is empty).
func usageOf(k, workspace, user string) bool {
	parts := strings.SplitN(k, "|", 4)
	return len(parts) == 4 && parts[2] == KindUser && parts[3] == user && (workspace == "" || parts[1] == workspace)
}

// Retention says how long conversation records are kept. A zero duration
// keeps records forever.
type Retention struct {
	// Default applies to every conversation without a channel override.
	Default time.Duration
	// Channels overrides Default by channel id (the third element of a
	// conversation key, platform/workspace/channel/thread).
	Channels map[string]time.Duration
}

// window returns the retention that applies to conversation key.
func (r Retention) window(key []byte) time.Duration {
	if len(r.Channels) > 0 {
		if parts := strings.SplitN(string(key), "/", 4); len(parts) >= 3 {
			if d, ok := r.Channels[parts[2]]; ok {
				return d
			}
		}
	}
	return r.Default
}

// PruneStats counts what a Prune pass deleted.
type PruneStats struct {
	// Expired is how many records were past their retention window.
	Expired int
	// OldGenerations is how many records of generations left behind by
	// /reset were deleted.
	OldGenerations int
	// Transactions is how many write transactions the pass took.
	Transactions int
}

// pruneSlack is how far past the retention cutoff Prune keeps reading a
// conversation's records, oldest first, before it concludes the rest are
// newer: records are appended in about the order they were said (a turn's
// records are appended when it ends, so they may trail later turns by the
// length of a reply).
const pruneSlack = time.Hour

// Prune is one pass of the data janitor: it deletes the records older than
// their conversation's retention window (see Retention) and every record of
// the generations /reset left behind, releasing attachment bytes that only
// deleted records referenced. It runs in small transactions (see
// chunkRecords), so turns keep committing while it runs.
func (s *Store) Prune(ctx context.Context, r Retention) (PruneStats, error) {
	var st PruneStats
	if err := ctxErr(ctx); err != nil {
		return st, err
	}
	keys, err := s.convKeys("")
	if err != nil {
		return st, fmt.Errorf("storage: prune: %w", err)
	}
	now := s.now()
	w := newChunkedWriter(s.db)
	defer func() {
		w.rollback()
		if st.Expired+st.OldGenerations > 0 && s.hist != nil {
			s.hist.clear() // records were deleted: cached windows may hold them
		}
	}()
	fail := func(err error) (PruneStats, error) {
		st.Transactions = w.commits
		return st, fmt.Errorf("storage: prune: %w", err)
	}
	for _, conv := range keys {
		var cutoff time.Time
		if d := r.window(conv); d > 0 {
			cutoff = now.Add(-d)
		}
		removed := map[string]bool{}
		pos := position{conv: conv}
		for {
			if err := ctxErr(ctx); err != nil {
				return fail(err)
			}
			tx, b, err := w.tx()
			if err != nil {
				return fail(err)
			}
			fin, err := pruneChunk(tx, &pos, cutoff, removed, b, &st)
			if err != nil {
				return fail(err)
			}
			if fin {
				if err := releaseRefs(tx, conv, removed); err != nil {
					return fail(err)
				}
				if b.spent() {
					if err := w.commit(); err != nil {
						return fail(err)
					}
				}
				break
			}
			if err := w.commit(); err != nil {
				return fail(err)
			}
		}
	}
	if err := w.commit(); err != nil {
		return fail(err)
	}
	st.Transactions = w.commits
	return st, nil
}

// pruneChunk deletes, within budget b, conversation pos.conv's records of
// old generations and its current generation's records said before cutoff
// (none when cutoff is zero). done is true when the conversation is finished.
func pruneChunk(tx *bolt.Tx, pos *position, cutoff time.Time, removed map[string]bool, b *chunk, st *PruneStats) (done bool, err error) {
	cb, cur := conv(tx, string(pos.conv))
	if cb == nil {
		return true, nil
	}
	curKey := genKey(cur)
	var oldGens [][]byte
	if err := cb.ForEachBucket(func(g []byte) error {
		if !bytes.Equal(g, curKey) {
			oldGens = append(oldGens, bytes.Clone(g))
		}
		return nil
	}); err != nil {
		return false, err
	}
	// Generations before the current one: /reset already released their
	// attachments, so they are deleted without reading them.
	for _, g := range oldGens {
		msgs := cb.Bucket(g)
		var del [][]byte
		c := msgs.Cursor()
		k, _ := c.First()
		for ; k != nil && !b.spent(); k, _ = c.Next() {
			b.scanned++
			b.deleted++
			del = append(del, bytes.Clone(k))
		}
		for _, d := range del {
			if err := msgs.Delete(d); err != nil {
				return false, err
			}
		}
		st.OldGenerations += len(del)
		if k != nil {
			return false, nil
		}
		if err := cb.DeleteBucket(g); err != nil {
			return false, err
		}
	}
	if cutoff.IsZero() {
		return true, nil
	}
	msgs := cb.Bucket(curKey)
	if msgs == nil {
		return true, nil
	}
	stop := cutoff.Add(pruneSlack)
	var del [][]byte
	c := msgs.Cursor()
	var k, v []byte
	if pos.rec == nil {
		k, v = c.First()
	} else if k, v = c.Seek(pos.rec); k != nil && bytes.Equal(k, pos.rec) {
		k, v = c.Next()
	}
	finished := false
	for ; k != nil; k, v = c.Next() {
		if b.spent() {
			break
		}
		b.scanned++
		pos.rec = bytes.Clone(k)
		var m recordMeta
		if err := segjson.Unmarshal(v, &m); err != nil {
			continue // unreadable: left for an operator to look at
		}
		if !m.Time.Before(stop) {
			finished = true
			break
		}
		if !m.Time.Before(cutoff) {
			continue
		}
		for _, a := range m.Attachments {
			if a.Ref != "" {
				removed[a.Ref] = true
			}
		}
		del = append(del, pos.rec)
		b.deleted++
	}
	for _, d := range del {
		if err := msgs.Delete(d); err != nil {
			return false, err
		}
	}
	st.Expired += len(del)
	return finished || k == nil, nil
}

// ExportRecord is one stored message in an export.
type ExportRecord struct {
	// Conversation is the conversation key; Generation counts its /resets.
	Conversation string `json:"conversation"`
	Generation   uint64 `json:"generation"`
	// Seq orders the records of one generation.
	Seq uint64 `json:"seq"`
	Record
}

// ExportCounter is one usage counter in an export.
type ExportCounter struct {
	// Period is "d:YYYY-MM-DD" or "m:YYYY-MM"; Workspace is platform/workspace.
	Period    string `json:"period"`
	Workspace string `json:"workspace"`
	Counter
}

// Export is what the store holds about one person: the messages /forget
// would delete (theirs and the replies to them) and their usage counters.
type Export struct {
	User      string          `json:"user"`
	Workspace string          `json:"workspace,omitempty"`
	Exported  time.Time       `json:"exported"`
	Messages  []ExportRecord  `json:"messages"`
	Usage     []ExportCounter `json:"usage"`
}

// ExportUser returns what the store holds about user in workspace
// (platform/workspace, e.g. "slack/T1"; every workspace when empty): the
// records ForgetUser would delete, with their conversation keys, and the
// user counters ForgetUsage would delete. It reads one snapshot in one read
// transaction.
func (s *Store) ExportUser(ctx context.Context, workspace, user string) (*Export, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	out := &Export{User: user, Workspace: workspace, Exported: s.now().UTC(), Messages: []ExportRecord{}, Usage: []ExportCounter{}}
	prefix := []byte{}
	if workspace != "" {
		prefix = []byte(workspace + "/")
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		convs := tx.Bucket(bucketConvs)
		c := convs.Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			if v != nil {
				continue
			}
			cb := convs.Bucket(k)
			err := cb.ForEachBucket(func(g []byte) error {
				if len(g) != 9 || g[0] != 'g' {
					return nil
				}
				gen := getU64(g[1:])
				mc := cb.Bucket(g).Cursor()
				for mk, mv := mc.First(); mk != nil; mk, mv = mc.Next() {
					var r Record
					if json.Unmarshal(mv, &r) != nil || r.Role != "user" || r.Author != user {
						continue
					}
					out.Messages = append(out.Messages, ExportRecord{Conversation: string(k), Generation: gen, Seq: getU64(mk), Record: r})
					if nk, nv := mc.Next(); nk != nil {
						var a Record
						if json.Unmarshal(nv, &a) == nil && a.Role == "assistant" {
							out.Messages = append(out.Messages, ExportRecord{Conversation: string(k), Generation: gen, Seq: getU64(nk), Record: a})
						} else {
							mc.Prev()
						}
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			if !usageOf(string(k), workspace, user) {
				return nil
			}
			parts := strings.SplitN(string(k), "|", 4)
			ec := ExportCounter{Period: parts[0], Workspace: parts[1]}
			if err := json.Unmarshal(v, &ec.Counter); err != nil {
				return err
			}
			out.Usage = append(out.Usage, ec)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: export: %w", err)
	}
	return out, nil
}
