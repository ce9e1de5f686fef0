package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	p   Policy
	now func() time.Time

	mu       sync.Mutex
	limiters map[string]*userLimit
	budget   map[string]chan struct{} // per-user budget lock: one budgeted reply in flight
}

type userLimit struct {
	lim      *rate.Limiter
	notified bool
	last     time.Time
}

func newGate(p Policy, now func() time.Time) *gate {
	return &gate{p: p, now: now, limiters: make(map[string]*userLimit), budget: make(map[string]chan struct{})}
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
	p := g.p
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
	if len(g.p.Admins) == 0 && len(g.p.AdminRoles) == 0 {
		return true
	}
	return in(g.p.Admins, u.ID) || anyIn(g.p.AdminRoles, u.Roles)
}

// hasAdmins reports whether any admin is configured.
func (g *gate) hasAdmins() bool { return len(g.p.Admins) > 0 || len(g.p.AdminRoles) > 0 }

// admit checks access and the per-user rate limit for a message. It returns
// "" to go ahead, or a notice to send instead of an answer. A user who keeps
// flooding after the notice is dropped silently until the bucket refills.
func (g *gate) admit(_ context.Context, e *Engine, m Message) string {
	s := m.Scope()
	if m.DM && g.p.DisableDMs {
		return refuseDMs
	}
	if !g.allowed(s, m.Author) {
		return refuseAccess
	}
	if g.p.RatePerMinute <= 0 {
		return ""
	}
	key := m.Platform + "/" + m.Author.ID
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	ul := g.limiters[key]
	if ul == nil {
		burst := g.p.RateBurst
		if burst <= 0 {
			burst = 3
		}
		ul = &userLimit{lim: rate.NewLimiter(rate.Limit(g.p.RatePerMinute/60), burst)}
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

// reserve holds the user's budget slot (one budgeted reply in flight per
// user) and checks every budget. It returns a release func, or a refusal.
func (g *gate) reserve(ctx context.Context, st Store, m Message) (release func(), refusal string, err error) {
	if !g.p.Budgets.any() || (g.p.Budgets.AdminsExempt && g.hasAdmins() && g.isAdmin(m.Author)) {
		return func() {}, "", nil
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
	release = func() { <-ch }
	ws := m.Platform + "/" + m.Workspace
	now := g.now()
	checks := []struct {
		what, kind, id string
		lim            Limit
	}{
		{"your", storage.KindUser, m.Author.ID, g.p.Budgets.User},
		{"this channel's", storage.KindChannel, m.Channel, g.p.Budgets.Channel},
		{"this server's", storage.KindAll, "*", g.p.Budgets.Workspace},
	}
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
				release()
				return nil, "", err
			}
			if used.Cost >= per.cap {
				release()
				return nil, fmt.Sprintf("💸 %s %s budget of %s is used up (%s spent). It resets %s.",
					capitalize(c.what), per.name, money(per.cap), money(used.Cost), resetsIn(now, per.resets)), nil
			}
		}
	}
	return release, "", nil
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
