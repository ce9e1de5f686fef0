package discord

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// transport routes discordgo's REST requests under the configured API base and
// watches rate-limit headers. discordgo builds every URL from package-level
// endpoint variables fixed at init (https://discord.com/api/v9/...), so
// rewriting at the HTTP layer is the one place that covers every call,
// including the gateway lookup, and it is safe for parallel sessions.
type transport struct {
	from string // discordgo's prefix, without trailing slash
	base string // the configured base, without trailing slash
	next http.RoundTripper

	global *rate.Limiter // Discord's 50 requests/s per bot (Config.GlobalRate)
	pacer  *pacer        // told about per-channel limits seen in headers
	// fallback, when set, gives requests made without a context (discordgo's
	// gateway lookup inside Open) one that ends when the adapter stops.
	fallback func() context.Context
	mx       Metrics // nil: no metrics

	mu          sync.Mutex
	globalUntil time.Time // a global 429 blocks every request until then
}

// newTransport routes requests under base; globalRate caps requests per
// second (<= 0: no cap).
func newTransport(base string, next http.RoundTripper, p *pacer, globalRate int) *transport {
	if next == nil {
		next = http.DefaultTransport
	}
	lim := rate.NewLimiter(rate.Inf, 0)
	if globalRate > 0 {
		lim = rate.NewLimiter(rate.Limit(globalRate), globalRate)
	}
	return &transport{
		from:   discordgoAPI,
		base:   strings.TrimRight(base, "/"),
		next:   next,
		global: lim,
		pacer:  p,
	}
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Done() == nil && t.fallback != nil {
		if fc := t.fallback(); fc != nil {
			ctx = fc
			req = req.WithContext(ctx)
		}
	}
	u := req.URL.String()
	rest, ours := strings.CutPrefix(u, t.from)
	if ours && t.base != t.from {
		nu, err := url.Parse(t.base + rest)
		if err != nil {
			return nil, err
		}
		req = req.Clone(ctx)
		req.URL = nu
		req.Host = ""
	}
	var began time.Time
	if t.mx != nil {
		began = time.Now()
	}
	if err := t.waitGlobal(ctx); err != nil {
		return nil, err
	}
	if ours && t.pacer != nil && req.Method != http.MethodGet {
		if ch := messageRouteChannel(rest); ch != "" {
			if err := t.pacer.admit(ctx, ch); err != nil {
				return nil, err
			}
		}
	}
	if t.mx != nil && ours {
		t.mx.PlatformWait(platform, time.Since(began))
	}
	resp, err := t.next.RoundTrip(req)
	if t.mx != nil && ours {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		t.mx.PlatformRequest(platform, req.Method+" "+routeLabel(rest), status)
	}
	if err != nil {
		if ours && t.base != t.from {
			// Name the URL actually called: discordgo reports its own.
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
		}
		return nil, err
	}
	if ours {
		t.observe(rest, resp)
	}
	return resp, nil
}

func (t *transport) waitGlobal(ctx context.Context) error {
	t.mu.Lock()
	until := t.globalUntil
	t.mu.Unlock()
	if d := time.Until(until); d > 0 {
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
	return t.global.Wait(ctx)
}

// observe reads rate-limit headers: a global 429 blocks every request; an
// exhausted message bucket of a channel pauses that channel's pacer until the
// bucket resets, so all replies in the channel wait together.
func (t *transport) observe(path string, resp *http.Response) {
	h := resp.Header
	if resp.StatusCode == http.StatusTooManyRequests &&
		(strings.EqualFold(h.Get("X-RateLimit-Global"), "true") || h.Get("X-RateLimit-Scope") == "global") {
		d := headerSeconds(h.Get("Retry-After"))
		if ra := headerSeconds(h.Get("X-RateLimit-Reset-After")); ra > d {
			d = ra
		}
		if d <= 0 {
			d = time.Second
		}
		t.mu.Lock()
		if until := time.Now().Add(d); until.After(t.globalUntil) {
			t.globalUntil = until
		}
		t.mu.Unlock()
		return
	}
	ch := messageRouteChannel(path)
	if ch == "" || t.pacer == nil {
		return
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if d := headerSeconds(h.Get("X-RateLimit-Reset-After")); d > 0 {
			t.pacer.block(ch, d)
		}
	}
}

// messageRouteChannel returns the channel id of /channels/{id}/messages[...]
// routes, the routes whose budget the pacer manages.
func messageRouteChannel(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	rest, ok := strings.CutPrefix(path, "/channels/")
	if !ok {
		return ""
	}
	id, tail, _ := strings.Cut(rest, "/")
	if id == "" || !strings.HasPrefix(tail, "messages") {
		return ""
	}
	if strings.HasSuffix(tail, "/threads") {
		return ""
	}
	return id
}

// headerSeconds parses a seconds value like "1.25"; zero when absent or bad.
func headerSeconds(v string) time.Duration {
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// platform is the platform label of this adapter's metrics.
const platform = "discord"

// Metrics receives the adapter's reports for monitoring (internal/metrics
// implements it).
type Metrics interface {
	// PlatformRequest reports one REST call: its method (HTTP method and
	// route, ids replaced, e.g. "POST /channels/:id/messages") and status
	// code, 0 when there was no response.
	PlatformRequest(platform, method string, status int)
	// PlatformWait reports how long a REST call waited for the global rate
	// limit and the channel pacer before it was sent.
	PlatformWait(platform string, d time.Duration)
}

// routeLabel reduces a REST path to a bounded route: segments that are
// not short lower-case words (ids, tokens, emoji) become ":id", the query
// is dropped and at most 8 segments are kept.
func routeLabel(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) > 8 {
		parts = parts[:8]
	}
	for i, p := range parts {
		if !routeWord(p) {
			parts[i] = ":id"
		}
	}
	return "/" + strings.Join(parts, "/")
}

// routeWord reports whether a path segment is a fixed word of a route.
func routeWord(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && r != '-' && r != '_' && r != '@' {
			return false
		}
	}
	return true
}
