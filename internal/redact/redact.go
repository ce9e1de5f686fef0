// Package redact keeps capability URLs out of logs. Discord interaction and
// webhook URLs and Slack response_url carry a token in their path; a
// transport error (*url.Error) prints the whole URL.
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

// Handler wraps a slog.Handler so that every error logged through it (an
// attribute whose value is an error) has its request URLs scrubbed.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(scrub(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	for i := range as {
		as[i] = scrub(as[i])
	}
	return handler{h.Handler.WithAttrs(as)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.Handler.WithGroup(name)} }

func scrub(a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindAny {
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.AnyValue(Error(err))
		}
	}
	return a
}
