// Package admin serves the operators' dashboard at /admin: spend and tokens
// per day stacked by model, top users, channels and models this month,
// budgets and how close each scope is, errors of the last 24 hours and live
// health. It is server-rendered HTML (charts are inline SVG drawn in Go) and
// works without JavaScript. Access needs the admin token, sent as a bearer
// token or through the login form, which sets an HttpOnly, SameSite=Strict
// session cookie derived from the token (the token itself never appears in
// URLs, cookies or logs).
package admin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cometbot/cometbot/storage"
)

// Usage reads usage counters; *storage.Store implements it.
type Usage interface {
	UsageRows(ctx context.Context, periods []string, workspace, kind string) ([]storage.UsageRow, error)
}

// Limit is a daily and a monthly budget in USD (0 = none).
type Limit struct{ Daily, Monthly float64 }

// Budgets are the configured limits per user, channel and workspace.
type Budgets struct{ User, Channel, Workspace Limit }

// ErrorCount is how many failures of one kind happened in the last 24 hours.
type ErrorCount struct {
	Kind  string
	Count int
}

// Platform is one chat platform's connection state.
type Platform struct {
	Name      string
	Connected bool
}

// Health is the live state shown on the dashboard.
type Health struct {
	Platforms []Platform
	// GatewayOK: the last catalog fetch from the gateway succeeded;
	// GatewayError says why not.
	GatewayOK    bool
	GatewayError string
	// CatalogModels is how many models the catalog holds; CatalogFetched
	// when it was last loaded (zero: never).
	CatalogModels  int
	CatalogFetched time.Time
	// StoreError is the store's failure, "" when it saves turns.
	StoreError string
}

// Options configures the dashboard.
type Options struct {
	// Token is the admin token (COMETBOT_ADMIN_TOKEN); required.
	Token string
	// Usage is required.
	Usage Usage
	// Budgets returns the limits in force (they change on a reload); optional.
	Budgets func() Budgets
	// Errors returns the failures of the last 24 hours; optional.
	Errors func() []ErrorCount
	// Health returns the live state; optional.
	Health func(ctx context.Context) Health
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// cookieName is the session cookie.
const cookieName = "cometbot_admin"

// Handler serves /admin (the dashboard, or the login form), POST
// /admin/login and POST /admin/logout.
type Handler struct {
	o       Options
	session string // the cookie value: an HMAC of the token
	mux     *http.ServeMux
}

// New returns the dashboard handler; mount it at "/admin" and "/admin/".
func New(o Options) (*Handler, error) {
	if o.Token == "" {
		return nil, errors.New("admin: a token is required")
	}
	if o.Usage == nil {
		return nil, errors.New("admin: Options.Usage is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	mac := hmac.New(sha256.New, []byte(o.Token))
	mac.Write([]byte("cometbot admin session v1"))
	h := &Handler{o: o, session: hex.EncodeToString(mac.Sum(nil)), mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /admin", h.dashboard)
	h.mux.HandleFunc("GET /admin/{$}", h.dashboard)
	h.mux.HandleFunc("POST /admin/login", h.login)
	h.mux.HandleFunc("POST /admin/logout", h.logout)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// authorized reports whether r carries the token (bearer) or the session cookie.
func (h *Handler) authorized(r *http.Request) bool {
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		return ok && equal(strings.TrimSpace(tok), h.o.Token)
	}
	c, err := r.Cookie(cookieName)
	return err == nil && equal(c.Value, h.session)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !equal(r.PostFormValue("token"), h.o.Token) {
		h.o.Logger.Warn("admin: login refused", "remote", r.RemoteAddr)
		h.loginForm(w, http.StatusUnauthorized, "That token is not right.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: h.session, Path: "/admin", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: 12 * 3600,
	})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/admin", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (h *Handler) loginForm(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, msg)
}

func (h *Handler) dashboard(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		h.loginForm(w, http.StatusUnauthorized, "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	v, err := h.build(ctx, r.URL.Query().Get("ws"))
	if err != nil {
		h.o.Logger.Error("admin: dashboard", "err", err)
		http.Error(w, "the dashboard could not read the store; see the logs", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, v); err != nil {
		h.o.Logger.Warn("admin: render dashboard", "err", err)
	}
}
