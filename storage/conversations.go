package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Turn statuses recorded with a record (see also StatusPending).
const (
	StatusOK        = "ok"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Record is one stored message of a conversation.
type Record struct {
	// Role is "user" or "assistant".
	Role string `json:"role"`
	// Text is the message text (for a failed assistant turn: what had streamed, if anything).
	Text string `json:"text"`
	// Author is the platform user id of a user record.
	Author string `json:"author,omitempty"`
	// AuthorName is the display name of a user record.
	AuthorName string `json:"author_name,omitempty"`
	// MessageID is the platform message id, when known.
	MessageID string `json:"message_id,omitempty"`
	// Time is when the message was said.
	Time time.Time `json:"time"`
	// Status is StatusOK, StatusFailed or StatusCancelled (the whole turn's outcome).
	Status string `json:"status,omitempty"`
	// Model answered (assistant records).
	Model string `json:"model,omitempty"`
	// InputTokens, OutputTokens and Cost are the reply's usage (assistant records).
	InputTokens  int     `json:"input_tokens,omitempty"`
	OutputTokens int     `json:"output_tokens,omitempty"`
	Cost         float64 `json:"cost,omitempty"`
	// Error is a short admin-facing reason for a failed turn.
	Error string `json:"error,omitempty"`
	// Turn is the id of the turn the record belongs to (its user message
	// and reply share it); empty on records written before turn ids.
	Turn string `json:"turn,omitempty"`
	// Attachments are the files the message carried (user records) or the
	// images the model generated (assistant records).
	Attachments []AttachmentRef `json:"attachments,omitempty"`
	// Steps are the tool-calling rounds of an assistant turn, in order,
	// before its final Text.
	Steps []ToolStep `json:"steps,omitempty"`
}

// ToolStep is one round of tool calls: the text the model wrote with the
// calls, the calls, and their results.
type ToolStep struct {
	Text    string       `json:"text,omitempty"`
	Calls   []ToolCall   `json:"calls"`
	Results []ToolResult `json:"results"`
}

// ToolCall is one call the model made.
type ToolCall struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
	// Signature is opaque provider state sent back with the call (Gemini's
	// thoughtSignature).
	Signature string `json:"sig,omitempty"`
}

// ToolResult is the result a tool call returned to the model.
type ToolResult struct {
	CallID  string `json:"call_id"`
	Name    string `json:"name"`
	Content string `json:"content"`
	IsError bool   `json:"is_error,omitempty"`
}

// AttachmentRef is an attachment kept with a record.
type AttachmentRef struct {
	Name     string `json:"name"`
	MIMEType string `json:"mime"`
	Size     int64  `json:"size"`
	// Ref is the content address (hex sha256) of the bytes in the blob
	// store; empty when the bytes were not kept.
	Ref string `json:"ref,omitempty"`
}

func genKey(gen uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'g'
	binary.BigEndian.PutUint64(k[1:], gen)
	return k
}

// conv returns the conversation bucket for key, and its current generation.
func conv(tx *bolt.Tx, key string) (*bolt.Bucket, uint64) {
	b := tx.Bucket(bucketConvs).Bucket([]byte(key))
	if b == nil {
		return nil, 0
	}
	var gen uint64
	if v := b.Get(keyGen); len(v) == 8 {
		gen = binary.BigEndian.Uint64(v)
	}
	return b, gen
}

// History returns up to limit most recent records of the conversation's
// current generation, oldest first, and that generation (pass it back to
// AppendTurn so a turn that raced a reset lands where it started). The cost
// is proportional to limit, not to the conversation's length; with the
// history cache, only records written since the last read are decoded.
func (s *Store) History(ctx context.Context, key string, limit int) (uint64, []Record, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, nil, err
	}
	var (
		gen    uint64
		recs   []Record
		cached *histEntry
		epoch  uint64
		update *histEntry
	)
	if s.hist != nil {
		cached, epoch = s.hist.get(key)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, g := conv(tx, key)
		gen = g
		if b == nil || limit <= 0 {
			return nil
		}
		msgs := b.Bucket(genKey(gen))
		if msgs == nil {
			return nil
		}
		seq := msgs.Sequence()
		if e := cached; e != nil && e.gen == gen && e.seq <= seq && (e.all || len(e.recs) >= limit) {
			window := e.recs
			if e.seq < seq {
				var fresh []Record
				c := msgs.Cursor()
				for k, v := c.Seek(u64(e.seq + 1)); k != nil; k, v = c.Next() {
					var r Record
					if err := decodeRecord(v, &r); err != nil {
						return fmt.Errorf("record %x: %w", k, err)
					}
					fresh = append(fresh, r)
				}
				// The new window: the cached one plus the new records, keeping
				// as many as before (at least limit), in one exact allocation.
				keep, all := max(limit, len(e.recs)), e.all
				old := e.recs
				if n := len(old) + len(fresh); n > keep {
					old, all = old[min(len(old), n-keep):], false
					fresh = fresh[max(0, len(fresh)-keep):]
				}
				window = make([]Record, 0, len(old)+len(fresh))
				window = append(append(window, old...), fresh...)
				update = &histEntry{key: key, gen: gen, seq: seq, all: all, recs: window}
			}
			recs = cloneRecords(window[max(0, len(window)-limit):])
			return nil
		}
		recs = make([]Record, 0, min(limit, 128))
		c := msgs.Cursor()
		for k, v := c.Last(); k != nil && len(recs) < limit; k, v = c.Prev() {
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			recs = append(recs, r)
		}
		slices.Reverse(recs)
		if s.hist != nil {
			update = &histEntry{key: key, gen: gen, seq: seq, all: len(recs) < limit, recs: cloneRecords(recs)}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("storage: read history: %w", err)
	}
	if update != nil {
		s.hist.put(epoch, update)
	}
	return gen, recs, nil
}

// AppendTurn appends records (normally the user turn and the assistant turn)
// to generation gen of the conversation, all or nothing. Concurrent calls are
// batched into shared transactions (one fsync for many turns).
func (s *Store) AppendTurn(ctx context.Context, key string, gen uint64, recs ...Record) error {
	return s.CommitTurn(ctx, key, gen, nil, recs...)
}

// CommitTurn is AppendTurn plus, when usage is not nil, AddUsage — in the
// same transaction, so a reply's history and its cost are durable together
// with one fsync.
func (s *Store) CommitTurn(ctx context.Context, key string, gen uint64, usage *UsageEntry, recs ...Record) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	vals := make([][]byte, len(recs))
	for i, r := range recs {
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("storage: encode record: %w", err)
		}
		vals[i] = v
	}
	err := s.batch(func(tx *bolt.Tx) error {
		if err := appendRecords(tx, key, gen, vals); err != nil {
			return err
		}
		if usage != nil {
			return addUsage(tx, *usage)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: append turn: %w", err)
	}
	return nil
}

// appendRecords appends encoded records to generation gen of conversation
// key, creating the conversation when it is new.
func appendRecords(tx *bolt.Tx, key string, gen uint64, vals [][]byte) error {
	b, err := tx.Bucket(bucketConvs).CreateBucketIfNotExists([]byte(key))
	if err != nil {
		return err
	}
	if b.Get(keyGen) == nil {
		if err := b.Put(keyGen, u64(gen)); err != nil {
			return err
		}
	}
	msgs, err := b.CreateBucketIfNotExists(genKey(gen))
	if err != nil {
		return err
	}
	for _, v := range vals {
		seq, err := msgs.NextSequence()
		if err != nil {
			return err
		}
		if err := msgs.Put(u64(seq), v); err != nil {
			return err
		}
	}
	return nil
}

// ConversationExists reports whether the bot has a conversation under key,
// in any generation: a thread stays the bot's after /reset empties it.
func (s *Store) ConversationExists(ctx context.Context, key string) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b, _ := conv(tx, key)
		ok = b != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("storage: conversation exists: %w", err)
	}
	return ok, nil
}

// ResetConversation starts a new generation: History returns nothing until
// new turns arrive. Old generations stay on disk until the data janitor
// (Prune) deletes them.
// The conversation's attachment bytes are dropped from the blob store (those
// another conversation still references are kept for it).
func (s *Store) ResetConversation(ctx context.Context, key string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketConvs).CreateBucketIfNotExists([]byte(key))
		if err != nil {
			return err
		}
		var gen uint64
		if v := b.Get(keyGen); len(v) == 8 {
			gen = binary.BigEndian.Uint64(v)
		}
		if err := b.Put(keyGen, u64(gen+1)); err != nil {
			return err
		}
		return dropConvBlobs(tx, []byte(key))
	})
	if s.hist != nil {
		s.hist.drop(key)
	}
	if err != nil {
		return fmt.Errorf("storage: reset conversation: %w", err)
	}
	return nil
}

// cloneRecords copies recs deeply enough that the caller and the history
// cache share nothing mutable (strings are immutable; Attachments and
// Steps are not).
func cloneRecords(recs []Record) []Record {
	out := slices.Clone(recs)
	for i := range out {
		if out[i].Attachments != nil {
			out[i].Attachments = slices.Clone(out[i].Attachments)
		}
		if out[i].Steps != nil {
			steps := slices.Clone(out[i].Steps)
			for j := range steps {
				steps[j].Calls = slices.Clone(steps[j].Calls)
				for k := range steps[j].Calls {
					steps[j].Calls[k].Args = slices.Clone(steps[j].Calls[k].Args)
				}
				steps[j].Results = slices.Clone(steps[j].Results)
			}
			out[i].Steps = steps
		}
	}
	return out
}

func hasPrefix(b, p []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == string(p) }

// ErrBlobNotFound means an attachment's bytes are no longer stored (dropped
// by the per-conversation cap, /reset or /forget).
var ErrBlobNotFound = errors.New("storage: attachment no longer stored")
