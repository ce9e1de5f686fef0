package bot

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// TestUnpricedModelNeverBypassesBudgets: where budgets apply, a model with
// no known price is refused with the reason (and the model is not called);
// without budgets, or for an exempt admin, it answers.
func TestUnpricedModelNeverBypassesBudgets(t *testing.T) {
	cat := fakeCatalog{
		"gpt-4o-mini": testCatalog["gpt-4o-mini"],
		"no-price":    {ID: "no-price", Type: "text"},
	}
	tests := []struct {
		name    string
		catalog Catalog
		model   string
		budgets Budgets
		admins  []string
		user    string
		refused bool
	}{
		{"priced model under budget", cat, "gpt-4o-mini", Budgets{User: Limit{Daily: 1}}, nil, "U1", false},
		{"unpriced model under budget", cat, "no-price", Budgets{User: Limit{Daily: 1}}, nil, "U1", true},
		{"model unknown to the catalog", cat, "mystery-model", Budgets{Channel: Limit{Monthly: 5}}, nil, "U1", true},
		{"no catalog at all", nil, "gpt-4o-mini", Budgets{Workspace: Limit{Monthly: 5}}, nil, "U1", true},
		{"unpriced model without budgets", cat, "no-price", Budgets{}, nil, "U1", false},
		{"exempt admin", cat, "no-price", Budgets{User: Limit{Daily: 1}, AdminsExempt: true}, []string{"UADMIN"}, "UADMIN", false},
		{"non-admin when admins are exempt", cat, "no-price", Budgets{User: Limit{Daily: 1}, AdminsExempt: true}, []string{"UADMIN"}, "U1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.Catalog = tt.catalog
				o.Defaults.Model = tt.model
				o.Policy.Budgets = tt.budgets
				o.Policy.Admins = tt.admins
			})
			final, failed := h.say(t, chanMsg(tt.user, "hi", "T1"))
			if tt.refused != (failed != "") {
				t.Fatalf("refused=%v, want %v (final %q, failed %q)", failed != "", tt.refused, final, failed)
			}
			if !tt.refused {
				return
			}
			for _, w := range []string{"can't price the model `" + tt.model + "`", "spending limits apply here", "/model", "ask an admin"} {
				if !strings.Contains(failed, w) {
					t.Errorf("refusal %q lacks %q", failed, w)
				}
			}
			if n := len(h.model.requests()); n != 0 {
				t.Errorf("the model was called %d times for an unpriced budgeted turn", n)
			}
		})
	}
}

// TestLastKnownPriceKeepsBudgetsWorking: the real catalog keeps the price of
// a model the fresh catalog dropped, so budgeted turns go on and are charged
// at that price.
func TestLastKnownPriceKeepsBudgetsWorking(t *testing.T) {
	cat := llm.NewCatalog(llm.CatalogConfig{})
	cat.SetModels([]llm.ModelInfo{{ID: "retiring", Type: "text", Pricing: llm.Pricing{Input: 1, Output: 2}}})
	cat.SetModels([]llm.ModelInfo{{ID: "gpt-4o-mini", Type: "text", Pricing: llm.Pricing{Input: 0.15, Output: 0.6}}})
	now := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
	h := newHarness(t, func(o *Options) {
		o.Catalog = cat
		o.Defaults.Model = "retiring"
		o.Policy.Budgets.User = Limit{Daily: 1}
		o.Now = func() time.Time { return now }
	})
	if final, failed := h.say(t, chanMsg("U1", "hi", "T1")); final == "" {
		t.Fatalf("refused: %q", failed)
	}
	c, err := h.store.Usage(context.Background(), storage.Day(now), "test/W1", storage.KindUser, "U1")
	if err != nil {
		t.Fatal(err)
	}
	const want = 1000*1.0/1e6 + 500*2.0/1e6 // the fake model reports 1000 in, 500 out
	if math.Abs(c.Cost-want) > 1e-12 {
		t.Fatalf("charged $%g, want $%g at the last known price", c.Cost, want)
	}
}

func TestModelSwitchWarnsWhenUnpricedUnderBudgets(t *testing.T) {
	cat := fakeCatalog{"gpt-4o-mini": testCatalog["gpt-4o-mini"], "no-price": {ID: "no-price", Type: "text"}}
	for _, budgets := range []bool{false, true} {
		h := newHarness(t, func(o *Options) {
			o.Catalog = cat
			if budgets {
				o.Policy.Budgets.User = Limit{Daily: 1}
			}
		})
		got := h.run(t, cmd("U1", "model", "no-price", ""))
		if warned := strings.Contains(got, "can't price this model"); warned != budgets {
			t.Errorf("budgets %v: /model no-price = %q", budgets, got)
		}
		if got := h.run(t, cmd("U1", "model", "gpt-4o-mini", "")); strings.Contains(got, "can't price") {
			t.Errorf("budgets %v: priced model warned: %q", budgets, got)
		}
	}
}

func TestUnpricedRefusalLoggedOncePerModel(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	h := newHarness(t, func(o *Options) {
		o.Catalog = fakeCatalog{"no-price": {ID: "no-price", Type: "text"}}
		o.Defaults.Model = "no-price"
		o.Policy.Budgets.User = Limit{Daily: 1}
		o.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), nil))
	})
	for i := range 3 {
		if _, failed := h.say(t, chanMsg("U1", "hi", fmt.Sprint("T", i))); failed == "" {
			t.Fatal("answered")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "has no known price"); n != 1 {
		t.Fatalf("%d log lines for 3 refusals, want 1:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
