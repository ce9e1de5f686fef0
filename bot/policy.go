package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// Policy is what admins control: access, admins, budgets, rate limits and
// model aliases. The zero Policy lets everyone in with no limits.
type Policy struct {
	// Admins are user ids allowed to change channel- and server-wide
	// settings. When Admins and AdminRoles are both empty, everyone may.
	Admins []string
	// AdminRoles are Discord role ids whose members are admins.
	AdminRoles []string
	// AdminsOnlyModelSwitch: when true only admins may switch a channel's model.
	AdminsOnlyModelSwitch bool
	// Allow and Deny lists. An empty allow list allows everyone; a deny
	// entry always wins.
	AllowUsers, DenyUsers           []string
	AllowChannels, DenyChannels     []string
	AllowWorkspaces, DenyWorkspaces []string
	AllowRoles, DenyRoles           []string
	// DisableDMs turns direct messages off.
	DisableDMs bool
	// Aliases map short names (e.g. "fast") to model ids.
	Aliases map[string]string
	// Budgets are spending limits in USD.
	Budgets Budgets
	// RatePerMinute and RateBurst bound messages per user (0 = unlimited).
	RatePerMinute float64
	RateBurst     int
	// UsageFooter appends "model · tokens · cost" to every reply.
	UsageFooter bool
}

// Limit is a daily and a monthly cap in USD (0 = none).
type Limit struct {
	Daily   float64
	Monthly float64
}

// Budgets are spending limits per user, channel and workspace.
type Budgets struct {
	User, Channel, Workspace Limit
	// AdminsExempt: admins are not held to budgets.
	AdminsExempt bool
}

func (b Budgets) any() bool {
	return b.User != (Limit{}) || b.Channel != (Limit{}) || b.Workspace != (Limit{})
}

// gate applies the Policy: access, per-user rate limits and budgets.
type gate struct {
	p   atomic.Pointer[Policy] // swapped by setPolicy on a reload
	now func() time.Time

	mu       sync.Mutex
	limiters map[string]*userLimit
	budget   map[string]chan struct{} // per-user budget lock: one budgeted reply in flight
	inflight map[string]int           // budgeted replies in flight per channel/server scope and period
	maxCost  map[string]float64       // largest reply cost seen per scope and period
	unpriced map[string]bool          // models whose refusal was logged
}

type userLimit struct {
	lim      *rate.Limiter
	notified bool
	last     time.Time
}

func newGate(p Policy, now func() time.Time) *gate {
	g := &gate{now: now, limiters: make(map[string]*userLimit), budget: make(map[string]chan struct{}),
		inflight: make(map[string]int), maxCost: make(map[string]float64), unpriced: make(map[string]bool)}
	g.p.Store(&p)
	return g
}

// pol returns the policy in force.
func (g *gate) pol() *Policy { return g.p.Load() }

// setPolicy replaces the policy. Per-user rate limiters restart when the
// rate or burst changed; budget locks and in-flight counts carry over.
func (g *gate) setPolicy(p Policy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.p.Swap(&p)
	if old.RatePerMinute != p.RatePerMinute || old.RateBurst != p.RateBurst {
		clear(g.limiters)
	}
}

// refusals are short and polite and say nothing about the configuration.
const (
	refuseAccess = "🙏 Sorry, I'm not available here."
	refuseDMs    = "🙏 Sorry, I don't take direct messages here — mention me in a channel instead."
	refuseRate   = "🐢 You're sending messages faster than I can answer — please slow down and try again in a minute."
)

func in(list []string, v string) bool { return slices.Contains(list, v) }

func anyIn(list, vs []string) bool {
	for _, v := range vs {
		if in(list, v) {
			return true
		}
	}
	return false
}

// allowed applies allow/deny lists to a scope and user.
func (g *gate) allowed(s Scope, u User) bool {
	p := g.pol()
	if in(p.DenyUsers, u.ID) || in(p.DenyChannels, s.Channel) || in(p.DenyWorkspaces, s.Workspace) || anyIn(p.DenyRoles, u.Roles) {
		return false
	}
	if len(p.AllowUsers) > 0 || len(p.AllowRoles) > 0 {
		if !in(p.AllowUsers, u.ID) && !anyIn(p.AllowRoles, u.Roles) {
			return false
		}
	}
	if len(p.AllowChannels) > 0 && !s.DM && !in(p.AllowChannels, s.Channel) {
		return false
	}
	if len(p.AllowWorkspaces) > 0 && s.Workspace != "" && !in(p.AllowWorkspaces, s.Workspace) {
		return false
	}
	return true
}

// isAdmin reports whether u may change channel- and server-wide settings.
func (g *gate) isAdmin(u User) bool {
	if len(g.pol().Admins) == 0 && len(g.pol().AdminRoles) == 0 {
		return true
	}
	return in(g.pol().Admins, u.ID) || anyIn(g.pol().AdminRoles, u.Roles)
}

// hasAdmins reports whether any admin is configured.
func (g *gate) hasAdmins() bool { return len(g.pol().Admins) > 0 || len(g.pol().AdminRoles) > 0 }

// admit checks access and the per-user rate limit for a message. It returns
// "" to go ahead, or a notice to send instead of an answer. A user who keeps
// flooding after the notice is dropped silently until the bucket refills.
func (g *gate) admit(_ context.Context, e *Engine, m Message) string {
	s := m.Scope()
	p := g.pol()
	if m.DM && p.DisableDMs {
		return refuseDMs
	}
	if !g.allowed(s, m.Author) {
		return refuseAccess
	}
	if p.RatePerMinute <= 0 {
		return ""
	}
	key := m.Platform + "/" + m.Author.ID
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	ul := g.limiters[key]
	if ul == nil {
		burst := p.RateBurst
		if burst <= 0 {
			burst = 3
		}
		ul = &userLimit{lim: rate.NewLimiter(rate.Limit(p.RatePerMinute/60), burst)}
		g.limiters[key] = ul
		g.sweepLocked(now)
	}
	ul.last = now
	if ul.lim.AllowN(now, 1) {
		ul.notified = false
		return ""
	}
	if ul.notified {
		return silent
	}
	ul.notified = true
	return refuseRate
}

// silent is a refusal that sends nothing (a flood after its one notice).
const silent = "\x00silent"

// sweepLocked forgets limiters idle for an hour so the map stays bounded.
func (g *gate) sweepLocked(now time.Time) {
	if len(g.limiters) < 10_000 {
		return
	}
	for k, ul := range g.limiters {
		if now.Sub(ul.last) > time.Hour {
			delete(g.limiters, k)
		}
	}
}

// budgeted reports whether spending limits apply to u.
func (g *gate) budgeted(u User) bool {
	return g.pol().Budgets.any() && !(g.pol().Budgets.AdminsExempt && g.hasAdmins() && g.isAdmin(u))
}

// unpricedRefusal is the answer to a budgeted turn whose model has no known price.
func unpricedRefusal(model string) string {
	return fmt.Sprintf("💸 I can't price the model `%s`, and spending limits apply here — pick a priced model with `/model` or ask an admin.", model)
}

// reserveBudget is the budget check before a turn's model call. Where
// budgets apply to the author it also refuses the turn when its cost could
// not be counted: the model has no known price, or the store is failing to
// record usage. Otherwise it is gate.reserve.
func (e *Engine) reserveBudget(ctx context.Context, m Message, model string) (release func(cost float64), refusal string, err error) {
	if !e.gate.budgeted(m.Author) {
		return func(float64) {}, "", nil
	}
	if err := e.StoreError(ctx); err != nil {
		return nil, refuseStoreFailing, nil
	}
	if !e.priced(model) {
		if e.gate.firstUnpriced(model) {
			e.log.Warn("budgeted turns with this model are refused: it has no known price (no catalog loaded, an unknown model, or a catalog record without prices)", "model", model)
		}
		return nil, unpricedRefusal(model), nil
	}
	return e.gate.reserve(ctx, e.opts.Store, m)
}

// firstUnpriced reports whether model is refused for lacking a price for
// the first time, so that it is logged once.
func (g *gate) firstUnpriced(model string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.unpriced[model] || len(g.unpriced) >= 1000 {
		return false
	}
	g.unpriced[model] = true
	return true
}

// reserve checks every budget before a model call and returns a release
// func to call with the reply's cost (0 when it failed), or a refusal.
//
// A user's budget is strict: one budgeted reply per user is in flight at a
// time, so it can be exceeded by at most that reply. Channel and server
// budgets also count the replies in flight, each at the largest reply cost
// seen in that scope (or the scope's average so far), so concurrent users
// overshoot them by at most one reply each only before any cost is known.
func (g *gate) reserve(ctx context.Context, st Store, m Message) (release func(cost float64), refusal string, err error) {
	if !g.budgeted(m.Author) {
		return func(float64) {}, "", nil
	}
	key := m.Platform + "/" + m.Workspace + "/" + m.Author.ID
	g.mu.Lock()
	ch := g.budget[key]
	if ch == nil {
		ch = make(chan struct{}, 1)
		g.budget[key] = ch
	}
	g.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	unlockUser := func() { <-ch }
	ws := m.Platform + "/" + m.Workspace
	now := g.now()
	checks := []struct {
		what, kind, id string
		lim            Limit
	}{
		{"your", storage.KindUser, m.Author.ID, g.pol().Budgets.User},
		{"this channel's", storage.KindChannel, m.Channel, g.pol().Budgets.Channel},
		{"this server's", storage.KindAll, "*", g.pol().Budgets.Workspace},
	}
	type pending struct {
		scope      string
		used, cap  float64
		avg        float64
		what, name string
		resets     time.Time
	}
	var shared []pending
	for _, c := range checks {
		for _, per := range []struct {
			name, period string
			cap          float64
			resets       time.Time
		}{
			{"daily", storage.Day(now), c.lim.Daily, nextDay(now)},
			{"monthly", storage.Month(now), c.lim.Monthly, nextMonth(now)},
		} {
			if per.cap <= 0 {
				continue
			}
			used, err := st.Usage(ctx, per.period, ws, c.kind, c.id)
			if err != nil {
				unlockUser()
				return nil, "", err
			}
			if used.Cost >= per.cap {
				unlockUser()
				return nil, budgetRefusal(c.what, per.name, per.cap, used.Cost, now, per.resets), nil
			}
			if c.kind != storage.KindUser {
				avg := 0.0
				if used.Replies > 0 {
					avg = used.Cost / float64(used.Replies)
				}
				shared = append(shared, pending{scope: ws + "|" + c.kind + "|" + c.id + "|" + per.name, used: used.Cost, cap: per.cap, avg: avg, what: c.what, name: per.name, resets: per.resets})
			}
		}
	}
	// Count the replies already in flight in shared scopes, atomically with
	// adding this one.
	g.mu.Lock()
	for _, p := range shared {
		est := max(g.maxCost[p.scope], p.avg)
		if p.used+float64(g.inflight[p.scope])*est >= p.cap {
			g.mu.Unlock()
			unlockUser()
			return nil, budgetRefusal(p.what, p.name, p.cap, p.used, now, p.resets), nil
		}
	}
	for _, p := range shared {
		g.inflight[p.scope]++
	}
	g.mu.Unlock()
	var once sync.Once
	release = func(cost float64) {
		once.Do(func() {
			g.mu.Lock()
			for _, p := range shared {
				if g.inflight[p.scope]--; g.inflight[p.scope] <= 0 {
					delete(g.inflight, p.scope)
				}
				if cost > g.maxCost[p.scope] {
					g.maxCost[p.scope] = cost
				}
			}
			g.mu.Unlock()
			unlockUser()
		})
	}
	return release, "", nil
}

func budgetRefusal(what, period string, limit, spent float64, now, resets time.Time) string {
	return fmt.Sprintf("💸 %s %s budget of %s is used up (%s spent, including replies in progress). It resets %s.",
		capitalize(what), period, money(limit), money(spent), resetsIn(now, resets))
}

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func nextDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
}

func nextMonth(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

func resetsIn(now, at time.Time) string {
	d := at.Sub(now).Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	when := at.Format("Jan 2 15:04 UTC")
	switch {
	case h >= 24:
		return fmt.Sprintf("on %s", when)
	case h > 0:
		return fmt.Sprintf("at %s (in %dh %dm)", when, h, m)
	default:
		return fmt.Sprintf("at %s (in %dm)", when, m)
	}
}

// usageEntry is a reply's usage for the user, channel, model and workspace
// counters.
func (e *Engine) usageEntry(m Message, model string, u llm.Usage, cost float64) *storage.UsageEntry {
	return &storage.UsageEntry{
		Time: e.opts.Now(), Workspace: m.Platform + "/" + m.Workspace, Channel: m.Channel, User: m.Author.ID, Model: model,
		Counter: storage.Counter{Replies: 1, InputTokens: int64(u.InputTokens), OutputTokens: int64(u.OutputTokens), Cost: cost},
	}
}
