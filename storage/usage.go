package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Usage counter kinds: who or what a counter adds up.
const (
	KindUser    = "user"
	KindChannel = "channel"
	KindModel   = "model"
	KindAll     = "all" // the whole workspace; id is "*"
)

// Counter adds up replies, tokens and cost.
type Counter struct {
	Replies      int     `json:"replies"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	Cost         float64 `json:"cost"`
}

// Add returns c plus o.
func (c Counter) Add(o Counter) Counter {
	return Counter{c.Replies + o.Replies, c.InputTokens + o.InputTokens, c.OutputTokens + o.OutputTokens, c.Cost + o.Cost}
}

// UsageEntry is one reply's usage, to be added to every counter it belongs to.
type UsageEntry struct {
	Time      time.Time
	Workspace string // platform/workspace, e.g. "slack/T1"
	Channel   string
	User      string
	Model     string
	Counter   Counter
}

// Day returns the daily period key of t (UTC), e.g. "d:2026-11-25".
func Day(t time.Time) string { return "d:" + t.UTC().Format("2006-01-02") }

// Month returns the monthly period key of t (UTC), e.g. "m:2026-11".
func Month(t time.Time) string { return "m:" + t.UTC().Format("2006-01") }

func usageKey(period, workspace, kind, id string) []byte {
	return []byte(period + "|" + workspace + "|" + kind + "|" + id)
}

// AddUsage adds e to the day and month counters of its user, channel, model
// and workspace, in one batched transaction.
func (s *Store) AddUsage(ctx context.Context, e UsageEntry) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	if err := s.batch(func(tx *bolt.Tx) error { return addUsage(tx, e) }); err != nil {
		return fmt.Errorf("storage: add usage: %w", err)
	}
	return nil
}

func addUsage(tx *bolt.Tx, e UsageEntry) error {
	b := tx.Bucket(bucketUsage)
	for _, p := range []string{Day(e.Time), Month(e.Time)} {
		for _, k := range [][]byte{
			usageKey(p, e.Workspace, KindAll, "*"),
			usageKey(p, e.Workspace, KindUser, e.User),
			usageKey(p, e.Workspace, KindChannel, e.Channel),
			usageKey(p, e.Workspace, KindModel, e.Model),
		} {
			var c Counter
			if v := b.Get(k); v != nil {
				if err := decodeCounter(v, &c); err != nil {
					return err
				}
			}
			data, err := encodeCounter(c.Add(e.Counter))
			if err != nil {
				return err
			}
			if err := b.Put(k, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// Usage returns one counter (zero when absent).
func (s *Store) Usage(ctx context.Context, period, workspace, kind, id string) (Counter, error) {
	if err := ctxErr(ctx); err != nil {
		return Counter{}, err
	}
	var c Counter
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketUsage).Get(usageKey(period, workspace, kind, id)); v != nil {
			return json.Unmarshal(v, &c)
		}
		return nil
	})
	if err != nil {
		return Counter{}, fmt.Errorf("storage: read usage: %w", err)
	}
	return c, nil
}

// NamedCounter is a counter with the id it belongs to.
type NamedCounter struct {
	ID string
	Counter
}

// TopUsage returns the n largest counters (by cost, then tokens) of one kind
// in a workspace and period.
func (s *Store) TopUsage(ctx context.Context, period, workspace, kind string, n int) ([]NamedCounter, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	prefix := usageKey(period, workspace, kind, "")
	var out []NamedCounter
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var nc NamedCounter
			if err := json.Unmarshal(v, &nc.Counter); err != nil {
				return err
			}
			nc.ID = string(k[len(prefix):])
			out = append(out, nc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: top usage: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cost != out[j].Cost {
			return out[i].Cost > out[j].Cost
		}
		return out[i].InputTokens+out[i].OutputTokens > out[j].InputTokens+out[j].OutputTokens
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// UsageRow is one usage counter with the period, workspace, kind and id it
// belongs to.
type UsageRow struct {
	Period, Workspace, Kind, ID string
	Counter
}

// UsageRows returns every counter of kind (with kind "", of every kind) in
// the given periods, in one workspace or, with workspace "", in all of them, read in one transaction
// (e.g. the 30 days of a chart). Rows come in key order: by period as
// given, then workspace, then id.
func (s *Store) UsageRows(ctx context.Context, periods []string, workspace, kind string) ([]UsageRow, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	var out []UsageRow
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		for _, p := range periods {
			prefix := []byte(p + "|")
			switch {
			case workspace != "" && kind != "":
				prefix = usageKey(p, workspace, kind, "")
			case workspace != "":
				prefix = []byte(p + "|" + workspace + "|")
			}
			for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
				parts := strings.SplitN(string(k), "|", 4)
				if len(parts) != 4 || kind != "" && parts[2] != kind {
					continue
				}
				r := UsageRow{Period: parts[0], Workspace: parts[1], Kind: parts[2], ID: parts[3]}
				if err := decodeCounter(v, &r.Counter); err != nil {
					return err
				}
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: usage rows: %w", err)
	}
	return out, nil
}
