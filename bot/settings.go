package bot

import (
	"context"
	"fmt"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// Catalog is the model catalog the engine validates, lists and prices
// models with; *llm.Catalog implements it.
type Catalog interface {
	// Loaded reports whether any catalog (fetched or cached) is available.
	Loaded() bool
	Lookup(id string) (llm.ModelInfo, bool)
	Search(query string, limit int) []llm.ModelInfo
	Suggest(id string, n int) []string
}

// Setting scopes, narrowest first.
const (
	ScopeThread    = "thread"
	ScopeChannel   = "channel"
	ScopeWorkspace = "server"
	scopeConfig    = "config"
	scopeDefault   = "default"
	scopePinned    = "thread start"
)

// scopeKey returns the settings key for a scope level.
func scopeKey(s Scope, level string) string {
	switch level {
	case ScopeThread:
		return s.Platform + "/" + s.Workspace + "/" + s.Channel + "/" + s.Thread
	case ScopeChannel:
		return s.Platform + "/" + s.Workspace + "/" + s.Channel
	default:
		return s.Platform + "/" + s.Workspace
	}
}

// Resolved are the effective settings of one scope, with where each came from.
type Resolved struct {
	Model           string
	ModelFrom       string
	SystemPrompt    string
	SystemFrom      string
	Temperature     *float64
	MaxOutputTokens int
	// ChannelTools and ChannelWebSearch are the channel's stored tool
	// settings (set by an admin with /tools), read with the rest.
	ChannelTools     *[]string
	ChannelWebSearch *bool
}

// resolve computes effective settings: thread → channel → workspace → config
// file (channel, then workspace) → defaults. A thread keeps the model it
// started with (the first stored reply's) unless the thread itself was set.
func (e *Engine) resolve(ctx context.Context, s Scope, hist []storage.Record) (Resolved, error) {
	var r Resolved
	levels := []string{ScopeChannel, ScopeWorkspace}
	if s.Thread != "" {
		levels = append([]string{ScopeThread}, levels...)
	}
	pinned := ""
	if s.Thread != "" {
		for _, rec := range hist {
			if rec.Role == "assistant" && rec.Status == storage.StatusOK && rec.Model != "" {
				pinned = rec.Model
				break
			}
		}
	}
	for _, lvl := range levels {
		st, ok, err := e.opts.Store.Settings(ctx, scopeKey(s, lvl))
		if err != nil {
			return r, err
		}
		if lvl == ScopeChannel && r.Model == "" && pinned != "" {
			r.Model, r.ModelFrom = pinned, scopePinned
		}
		if !ok {
			continue
		}
		if lvl == ScopeChannel && !s.DM {
			r.ChannelTools, r.ChannelWebSearch = st.Tools, st.WebSearch
		}
		if r.Model == "" && st.Model != "" {
			r.Model, r.ModelFrom = st.Model, lvl
		}
		if r.SystemFrom == "" && st.SystemPrompt != nil {
			r.SystemPrompt, r.SystemFrom = *st.SystemPrompt, lvl
		}
		if r.Temperature == nil && st.Temperature != nil {
			r.Temperature = st.Temperature
		}
		if r.MaxOutputTokens == 0 && st.MaxOutputTokens != nil {
			r.MaxOutputTokens = *st.MaxOutputTokens
		}
	}
	if r.Model == "" && pinned != "" {
		r.Model, r.ModelFrom = pinned, scopePinned
	}
	for _, d := range []Defaults{e.conf().Channels[s.Channel], e.conf().Workspaces[s.Workspace]} {
		r.fill(d, scopeConfig)
	}
	r.fill(e.conf().Defaults, scopeDefault)
	return r, nil
}

func (r *Resolved) fill(d Defaults, from string) {
	if r.Model == "" && d.Model != "" {
		r.Model, r.ModelFrom = d.Model, from
	}
	if r.SystemFrom == "" && d.SystemPrompt != "" {
		r.SystemPrompt, r.SystemFrom = d.SystemPrompt, from
	}
	if r.Temperature == nil && d.Temperature != nil {
		r.Temperature = d.Temperature
	}
	if r.MaxOutputTokens == 0 && d.MaxOutputTokens > 0 {
		r.MaxOutputTokens = d.MaxOutputTokens
	}
}

// pricer is a Catalog that remembers the last known price of models the
// current catalog lacks or lists unpriced; *llm.Catalog is one.
type pricer interface {
	Price(id string) (llm.Pricing, bool)
}

// price returns what a reply of model is charged at: the catalog's price,
// else the last known one. ok is false when the model can't be priced (no
// catalog, an unknown model, or a record without prices).
func (e *Engine) price(model string) (llm.Pricing, bool) {
	switch c := e.opts.Catalog.(type) {
	case nil:
		return llm.Pricing{}, false
	case pricer:
		return c.Price(model)
	}
	info, ok := e.opts.Catalog.Lookup(model)
	if !ok || !info.Pricing.Known() {
		return llm.Pricing{}, false
	}
	return info.Pricing, true
}

// priced reports whether replies of model can be priced.
func (e *Engine) priced(model string) bool {
	_, ok := e.price(model)
	return ok
}

// cost prices a reply (0 when the model can't be priced: budgeted turns
// never get that far, see reserveBudget).
func (e *Engine) cost(model string, u llm.Usage) float64 {
	p, ok := e.price(model)
	if !ok {
		return 0
	}
	return p.Cost(u)
}

// footer is the optional per-reply line: model · tokens · cost.
func footer(model string, u llm.Usage, cost float64, priced bool) string {
	s := fmt.Sprintf("_%s · %s", model, tokens(u.Total()))
	if priced {
		s += " · " + money(cost)
	}
	return s + "_"
}

// compact renders a count as 950, 1.2k, 3.4M.
func compact(n int) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1000)
	default:
		return fmt.Sprintf("%.1fM", float64(n)/1_000_000)
	}
}
