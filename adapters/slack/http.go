package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxRequestBytes bounds the body of a Slack request.
const maxRequestBytes = 1 << 20

// HTTPHandler serves the HTTP Events API: POST /slack/events,
// /slack/commands and /slack/interactivity. Every request's signature is
// verified (and stale timestamps rejected) before anything else happens;
// events are acknowledged at once and processed in the background, which
// needs Run to be running.
func (a *Adapter) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/events", a.serveEvents)
	mux.HandleFunc("POST /slack/commands", a.serveCommands)
	mux.HandleFunc("POST /slack/interactivity", a.serveInteractivity)
	return mux
}

// verify reads the body and checks Slack's signature. On failure it answers
// 413 or 401 and returns false. Refusals are logged at most once per kind
// per 10 seconds (with the count of the others), so a client sending bad
// requests in a loop cannot flood the log.
func (a *Adapter) verify(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		a.rejects.Warn(a.log, "slack: HTTP request refused: body too large or unreadable", "path", r.URL.Path, "err", err)
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	if a.cfg.SigningSecret == "" {
		a.rejects.Warn(a.log, "slack: HTTP request refused: no signing secret configured (SLACK_SIGNING_SECRET)")
		http.Error(w, "signature verification not configured", http.StatusUnauthorized)
		return nil, false
	}
	sv, err := slack.NewSecretsVerifier(r.Header, a.cfg.SigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		a.rejects.Warn(a.log, "slack: HTTP request with bad or stale signature refused", "path", r.URL.Path, "err", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (a *Adapter) serveEvents(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verify(w, r)
	if !ok {
		return
	}
	ev, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		// Unknown inner event types are not ours to handle; acknowledge so
		// that Slack does not redeliver them.
		a.log.Debug("slack: unparsed event acknowledged", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		uv, ok := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if !ok {
			http.Error(w, "bad url_verification", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(uv.Challenge))
	case slackevents.CallbackEvent:
		ctx := a.runContext()
		if ctx == nil {
			http.Error(w, "not running", http.StatusServiceUnavailable)
			return
		}
		if retry := r.Header.Get("X-Slack-Retry-Num"); retry != "" {
			a.log.Debug("slack: event redelivered", "retry", retry, "reason", r.Header.Get("X-Slack-Retry-Reason"))
		}
		// Answer 200 once the message is accepted (its turn durable) or
		// known not to be for the bot, at the latest after ackDeadline: a
		// crash before that makes Slack redeliver the event.
		accepted := make(chan struct{})
		a.dispatchEvent(ctx, ev, 0, sync.OnceFunc(func() { close(accepted) }))
		t := time.NewTimer(ackDeadline)
		select {
		case <-accepted:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// running verifies the request and returns Run's context; it answers the
// request itself (401, or 503 so Slack retries) when either fails.
func (a *Adapter) running(w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	if _, ok := a.verify(w, r); !ok {
		return nil, false
	}
	ctx := a.runContext()
	if ctx == nil {
		http.Error(w, "not running", http.StatusServiceUnavailable)
		return nil, false
	}
	return ctx, true
}

func (a *Adapter) serveCommands(w http.ResponseWriter, r *http.Request) {
	if handled := a.sslCheck(w, r); handled {
		return
	}
	ctx, ok := a.running(w, r)
	if !ok {
		return
	}
	sc, err := slack.SlashCommandParse(r)
	if err != nil {
		http.Error(w, "bad slash command", http.StatusBadRequest)
		return
	}
	payload, follow := a.slashCommand(r.Context(), sc)
	a.goBackground(ctx, follow)
	writeJSON(w, payload)
}

// sslCheck answers Slack's certificate check of a slash command's request
// URL (a form POST with ssl_check=1 and no command) with a plain 200, signed
// or not, as Slack expects; the command is not run. It reports whether it
// answered the request; otherwise the body is left readable.
func (a *Adapter) sslCheck(w http.ResponseWriter, r *http.Request) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return true
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if form, err := url.ParseQuery(string(body)); err != nil || form.Get("ssl_check") != "1" {
		return false
	}
	a.log.Debug("slack: ssl_check answered")
	w.WriteHeader(http.StatusOK)
	return true
}

func (a *Adapter) serveInteractivity(w http.ResponseWriter, r *http.Request) {
	ctx, ok := a.running(w, r)
	if !ok {
		return
	}
	cb, err := slack.InteractionCallbackParse(r)
	if err != nil {
		http.Error(w, "bad interaction payload", http.StatusBadRequest)
		return
	}
	payload, follow := a.interaction(r.Context(), cb)
	a.goBackground(ctx, follow)
	if payload == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, payload)
}
