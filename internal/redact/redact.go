// Package redact keeps secrets out of logs. Discord interaction and
// webhook URLs and Slack response_url carry a token in their path; a
// transport error (*url.Error) prints the whole URL. A gateway key can also
// sit in a configured URL's user info or query (COMETAPI_BASE_URL); and the
// configured secrets themselves are scrubbed from every logged string.
package redact

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
)

// URL returns u with its path, query and user info replaced by "…", keeping
// only scheme and host.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Placeholder replaces a secret.
const Placeholder = "[redacted]"

// Credentials returns the URL raw with the credentials it may carry
// replaced by [redacted]: its user info (user:password@) and every query
// value; the fragment is dropped. Text that is not a URL comes back as
// "[redacted URL]" when it contains '@', '?' or '#' (it may hide one), else
// unchanged.
func Credentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if strings.ContainsAny(raw, "@?#") {
			return "[redacted URL]"
		}
		return raw
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString(Placeholder + "@")
	}
	b.WriteString(u.Host + u.EscapedPath())
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if k, _, ok := strings.Cut(p, "="); ok {
				parts[i] = k + "=" + Placeholder
			} else {
				parts[i] = Placeholder // a bare token may be the key itself
			}
		}
		b.WriteString("?" + strings.Join(parts, "&"))
	}
	return b.String()
}

// URLSecrets returns the credentials a URL carries (user name, password,
// query values), for Handler's list of secrets.
func URLSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			v = k
		}
		if uv, err := url.QueryUnescape(v); err == nil && uv != v {
			out = append(out, uv)
		}
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Error returns err with every request URL it carries (from *url.Error)
// reduced to scheme and host, for logging. A nil err stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for e := err; e != nil; {
		var ue *url.Error
		if !errors.As(e, &ue) {
			break
		}
		if ue.URL != "" && strings.Contains(msg, ue.URL) {
			msg = strings.ReplaceAll(msg, ue.URL, URL(ue.URL))
			changed = true
		}
		e = ue.Err
	}
	if !changed {
		return err
	}
	return redacted{msg: msg, err: err}
}

// redacted prints the scrubbed message but still unwraps to the original.
type redacted struct {
	msg string
	err error
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }

// minSecret is the shortest secret a Scrubber replaces: shorter values
// would mangle ordinary words.
const minSecret = 4

// Scrubber replaces known secret values in text. A nil *Scrubber replaces
// nothing.
type Scrubber struct{ r *strings.Replacer }

// NewScrubber returns a Scrubber for secrets (empty and very short values
// are ignored), or nil when none is left.
func NewScrubber(secrets ...string) *Scrubber {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= minSecret {
			pairs = append(pairs, s, Placeholder)
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return &Scrubber{strings.NewReplacer(pairs...)}
}

// String returns t with every secret replaced by [redacted].
func (s *Scrubber) String(t string) string {
	if s == nil {
		return t
	}
	return s.r.Replace(t)
}

// Error returns err with its request URLs reduced (see Error) and every
// secret replaced; it still unwraps to err. A nil err stays nil.
func (s *Scrubber) Error(err error) error {
	err = Error(err)
	if err == nil || s == nil {
		return err
	}
	if msg := err.Error(); s.String(msg) != msg {
		return redacted{msg: s.String(msg), err: err}
	}
	return err
}

// Handler wraps a slog.Handler so that every error logged through it (an
// attribute whose value is an error) has its request URLs scrubbed, and
// every secret in secrets is replaced by [redacted] wherever it appears in
// the message, a string or error attribute, or a group of them.
func Handler(h slog.Handler, secrets ...string) slog.Handler {
	return handler{h, NewScrubber(secrets...)}
}

type handler struct {
	slog.Handler
	secrets *Scrubber
}

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.secrets.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.scrub(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i := range as {
		clean[i] = h.scrub(as[i])
	}
	return handler{h.Handler.WithAttrs(clean), h.secrets}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{h.Handler.WithGroup(name), h.secrets}
}

func (h handler) scrub(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	switch a.Value.Kind() {
	case slog.KindString:
		if h.secrets != nil {
			a.Value = slog.StringValue(h.secrets.String(a.Value.String()))
		}
	case slog.KindGroup:
		g := a.Value.Group()
		clean := make([]slog.Attr, len(g))
		for i := range g {
			clean[i] = h.scrub(g[i])
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.AnyValue(h.secrets.Error(err))
		}
	}
	return a
}
