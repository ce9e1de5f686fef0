package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestHistoryCacheMatchesStore runs random appends, resets, forgets and
// reads against a store with the history cache (small, so entries get
// evicted) and one without, and requires identical History results.
func TestHistoryCacheMatchesStore(t *testing.T) {
	ctx := context.Background()
	for _, budget := range []int64{64 << 10, 4 << 20} {
		t.Run(fmt.Sprintf("budget=%d", budget), func(t *testing.T) {
			open := func(name string, cache int64) *Store {
				s, err := Open(filepath.Join(t.TempDir(), name), Options{NoSync: true, HistoryCacheBytes: cache})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			cached, plain := open("cached.db", budget), open("plain.db", -1)
			rng := rand.New(rand.NewPCG(1, uint64(budget)))
			keys := []string{"slack/T1/C1/1", "slack/T1/C1/2", "slack/T1/C2/1", "discord/G1/C1/1", "slack/T1/C3/9"}
			users := []string{"U1", "U2", "U3"}
			limits := []int{1, 3, 10, 50, 200}
			for step := range 1200 {
				key := keys[rng.IntN(len(keys))]
				switch op := rng.IntN(100); {
				case op < 45:
					g1, _, _ := cached.History(ctx, key, 1)
					g2, _, _ := plain.History(ctx, key, 1)
					if g1 != g2 {
						t.Fatalf("step %d: generations differ: %d vs %d", step, g1, g2)
					}
					u := users[rng.IntN(len(users))]
					text := fmt.Sprintf("msg %d %s", step, string(make([]byte, rng.IntN(300))))
					recs := []Record{{Role: "user", Text: text, Author: u, Time: time.Unix(int64(step), 0).UTC()},
						{Role: "assistant", Text: "re " + text, Model: "m", Status: StatusOK, Time: time.Unix(int64(step), 1).UTC()}}
					for i := range rng.IntN(3) { // attachments on some records
						r := &recs[rng.IntN(2)]
						r.Attachments = append(r.Attachments, AttachmentRef{
							Name: fmt.Sprintf("f%d-%d.png", step, i), MIMEType: "image/png", Size: int64(rng.IntN(1 << 20)), Ref: fmt.Sprintf("%064x", rng.Uint64())})
					}
					for _, s := range []*Store{cached, plain} {
						if err := s.AppendTurn(ctx, key, g1, recs...); err != nil {
							t.Fatal(err)
						}
					}
				case op < 48:
					for _, s := range []*Store{cached, plain} {
						if err := s.ResetConversation(ctx, key); err != nil {
							t.Fatal(err)
						}
					}
				case op < 50:
					u := users[rng.IntN(len(users))]
					p := "slack/T1/"
					n1, _ := cached.ForgetUser(ctx, p, u)
					n2, _ := plain.ForgetUser(ctx, p, u)
					if n1 != n2 {
						t.Fatalf("step %d: forget deleted %d vs %d", step, n1, n2)
					}
				default:
					limit := limits[rng.IntN(len(limits))]
					g1, r1, err1 := cached.History(ctx, key, limit)
					g2, r2, err2 := plain.History(ctx, key, limit)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if g1 != g2 || !reflect.DeepEqual(r1, r2) {
						t.Fatalf("step %d: History(%s, %d) differs: gen %d vs %d, %d vs %d records", step, key, limit, g1, g2, len(r1), len(r2))
					}
					for i := range r1 { // must not leak into the cache
						r1[i].Text = "mutated by the caller"
						for j := range r1[i].Attachments {
							r1[i].Attachments[j].Name = "mutated"
						}
					}
				}
			}
			if cached.hist.size > budget {
				t.Fatalf("cache holds %d bytes, budget %d", cached.hist.size, budget)
			}
		})
	}
}

// TestHistoryCacheConcurrent reads while appending; run with -race.
func TestHistoryCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", w%2)
			for i := range 200 {
				if err := s.AppendTurn(ctx, key, 0, Record{Role: "user", Text: fmt.Sprint(i)}, Record{Role: "assistant", Text: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
				_, recs, err := s.History(ctx, key, 10)
				if err != nil || len(recs) == 0 {
					t.Errorf("History = %d records, %v", len(recs), err)
					return
				}
				for j := 1; j < len(recs); j++ {
					if recs[j].Role == recs[j-1].Role {
						t.Errorf("history out of order: %+v", recs)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
