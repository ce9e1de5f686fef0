// Package bottest is a harness for end-to-end tests of cometbot: a real
// engine with a real bbolt store (in a temporary directory) and the real llm
// client talking HTTP/SSE to the loopback fake gateway from llm/llmtest.
// Adapter tests put their platform fake in front of Harness.Engine.
package bottest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
	"github.com/cometbot/cometbot/storage"
)

// Options tunes New. The zero value is a working harness.
type Options struct {
	// DBPath reuses a database file (to test restarts); default a temp file.
	DBPath string
	// Gateway configures the fake gateway (reply text, echo, latency, models).
	Gateway llmtest.Options
	// Engine, if set, adjusts the engine options before New.
	Engine func(*bot.Options)
	// Logger receives engine logs; default discards them.
	Logger *slog.Logger
	// NoCatalog leaves the engine without a catalog.
	NoCatalog bool
	// LLMMetrics, when set, receives the gateway client's metrics.
	LLMMetrics llm.Metrics
}

// Harness is a running engine wired to a fake gateway.
type Harness struct {
	Engine  *bot.Engine
	Gateway *llmtest.Server
	Store   *storage.Store
	Client  *llm.Client
	Catalog *llm.Catalog
	// DefaultModel is the engine's default model.
	DefaultModel string
}

// DefaultModel is the default model of a harness engine.
const DefaultModel = "gpt-4o-mini"

// New starts a harness; t.Cleanup shuts the engine down, closes the store
// and stops the fake gateway (in that order).
func New(t testing.TB, opts Options) *Harness {
	t.Helper()
	gw := llmtest.New(t, opts.Gateway)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	path := opts.DBPath
	if path == "" {
		path = filepath.Join(t.TempDir(), "cometbot.db")
	}
	st, err := storage.Open(path, storage.Options{NoSync: true})
	if err != nil {
		t.Fatalf("bottest: open store: %v", err)
	}
	h := &Harness{Gateway: gw, Store: st, DefaultModel: DefaultModel}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cat bot.Catalog
	if !opts.NoCatalog {
		h.Catalog = llm.NewCatalog(llm.CatalogConfig{URL: gw.CatalogURL(), Cache: st, Logger: log})
		if err := h.Catalog.Refresh(ctx); err != nil {
			t.Fatalf("bottest: load catalog: %v", err)
		}
		cat = h.Catalog
	}
	h.Client, err = llm.NewClient(llm.Config{BaseURL: gw.URL(), APIKey: "test-key", Logger: log, Catalog: h.Catalog,
		RetryBase: 10 * time.Millisecond, RetryDeadline: 5 * time.Second, StallTimeout: 5 * time.Second, Metrics: opts.LLMMetrics})
	if err != nil {
		t.Fatalf("bottest: llm client: %v", err)
	}
	bo := bot.Options{Store: st, Blobs: st, Model: h.Client, Catalog: cat, Logger: log, Defaults: bot.Defaults{Model: DefaultModel}}
	if opts.Engine != nil {
		opts.Engine(&bo)
	}
	h.Engine, err = bot.New(bo)
	if err != nil {
		t.Fatalf("bottest: engine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Engine.Shutdown(ctx); err != nil {
			t.Errorf("bottest: engine shutdown: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("bottest: close store: %v", err)
		}
	})
	return h
}

// Prompts returns every model call the fake gateway received, decoded into
// provider-neutral terms (catalog and other requests are skipped).
func (h *Harness) Prompts() []llmtest.Prompt {
	var out []llmtest.Prompt
	for _, r := range h.Gateway.Requests() {
		if r.Format == "" {
			continue
		}
		if p, err := r.Decode(); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// LastPrompt returns the last model call the fake gateway received.
func (h *Harness) LastPrompt() (llmtest.Prompt, bool) {
	ps := h.Prompts()
	if len(ps) == 0 {
		return llmtest.Prompt{}, false
	}
	return ps[len(ps)-1], true
}

// LastModel returns the model id of the last model call ("" when none).
func (h *Harness) LastModel() string {
	p, _ := h.LastPrompt()
	return p.Model
}
