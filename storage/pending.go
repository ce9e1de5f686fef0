package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketPending indexes the turns that have started and not ended:
// pending/<turn id> -> JSON PendingTurn.
var bucketPending = []byte("pending")

// PendingTurn is a turn that has started and not ended: what a restarted
// process needs to finish it (or to tell the user it was interrupted).
type PendingTurn struct {
	// ID is the turn id (Record.Turn of its records).
	ID string `json:"id"`
	// Conv is the conversation the turn belongs to.
	Conv string `json:"conv"`
	// Platform names the adapter that can resume the reply.
	Platform string `json:"platform"`
	// Ref is the platform reference of the reply's message (opaque to the
	// store; e.g. Slack channel and ts, Discord channel and message id);
	// empty until the reply has a message.
	Ref string `json:"ref,omitempty"`
	// Started is when the turn was accepted.
	Started time.Time `json:"started"`
	// Message is the engine's encoding of the incoming message.
	Message json.RawMessage `json:"message"`
	// EventID, when set, is recorded as seen (until SeenUntil) in the
	// same transaction, so a redelivery after a crash is recognized as a
	// duplicate of the pending turn, never answered a second time.
	EventID   string    `json:"event_id,omitempty"`
	SeenUntil time.Time `json:"seen_until,omitzero"`
}

// BeginTurn makes a turn durable as it is accepted: the conversation then
// exists (a thread stays the bot's after a crash) and the turn is indexed as
// pending with the incoming message, so a restarted process can finish it.
// It commits at once (group-committed with concurrent writes, carrying the
// lazy event-id write of the same message): nothing the user can see of the
// turn may exist before it is durable. Callers run it concurrently with the
// model call.
func (s *Store) BeginTurn(ctx context.Context, p PendingTurn) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if p.ID == "" || p.Conv == "" {
		return fmt.Errorf("storage: begin turn: a pending turn needs an ID and a conversation")
	}
	pv, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("storage: encode pending turn: %w", err)
	}
	now := s.now()
	err = s.batch(func(tx *bolt.Tx) error {
		if err := appendRecords(tx, p.Conv, 0, nil); err != nil {
			return err
		}
		if p.EventID != "" && p.SeenUntil.After(now) {
			if _, err := markSeenTx(tx, []byte(p.EventID), now, p.SeenUntil.UnixNano()); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketPending).Put([]byte(p.ID), pv)
	})
	if err != nil {
		return fmt.Errorf("storage: begin turn: %w", err)
	}
	return nil
}

// SetPendingRef records the platform reference of a pending turn's reply.
// It does nothing when the turn has already ended.
func (s *Store) SetPendingRef(ctx context.Context, id, ref string) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	err := s.batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPending)
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		var p PendingTurn
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("pending turn %q: %w", id, err)
		}
		if p.Ref == ref {
			return nil
		}
		p.Ref = ref
		nv, err := json.Marshal(p)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	if err != nil {
		return fmt.Errorf("storage: set reply reference: %w", err)
	}
	return nil
}

// EndTurn ends a pending turn: its records (the user's message and the
// assistant's reply, whose Status is the turn's outcome) are appended to the
// conversation, usage (when not nil) is added, and the turn leaves the
// pending index — one transaction. gen is the conversation generation the
// turn read its history from (see History).
func (s *Store) EndTurn(ctx context.Context, p PendingTurn, gen uint64, usage *UsageEntry, recs ...Record) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	vals := make([][]byte, len(recs))
	for i, r := range recs {
		r.Turn = p.ID
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("storage: encode record: %w", err)
		}
		vals[i] = v
	}
	err := s.batch(func(tx *bolt.Tx) error {
		if err := appendRecords(tx, p.Conv, gen, vals); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPending).Delete([]byte(p.ID)); err != nil {
			return err
		}
		if usage != nil {
			return addUsage(tx, *usage)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storage: end turn: %w", err)
	}
	return nil
}

// PendingTurns lists the turns that started and did not end, oldest first.
func (s *Store) PendingTurns(ctx context.Context) ([]PendingTurn, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	var out []PendingTurn
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var p PendingTurn
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("pending turn %q: %w", k, err)
			}
			out = append(out, p) // json.Unmarshal copied everything out of v
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("storage: pending turns: %w", err)
	}
	sortPending(out)
	return out, nil
}

func sortPending(ps []PendingTurn) {
	slices.SortStableFunc(ps, func(a, b PendingTurn) int { return a.Started.Compare(b.Started) })
}
