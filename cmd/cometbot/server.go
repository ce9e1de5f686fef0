package main

import (
	"context"
	"net/http"
	"time"
)

// httpLimits bound what one client can hold of the HTTP server
// (COMETBOT_HTTP_ADDR). Nothing it serves is long: health probes and Slack's
// requests, which Slack wants answered within 3 seconds.
type httpLimits struct {
	// ReadHeader bounds reading a request's headers; Read the whole request,
	// body included (a slow body is cut off); Write the time from the end of
	// the headers to the end of the response; Idle a keep-alive connection
	// waiting for its next request.
	ReadHeader, Read, Write, Idle time.Duration
	// MaxHeaderBytes bounds request headers; MaxBodyBytes request bodies.
	MaxHeaderBytes int
	MaxBodyBytes   int64
}

// defaultHTTPLimits are the limits of the served HTTP server.
var defaultHTTPLimits = httpLimits{
	ReadHeader: 5 * time.Second, Read: 15 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second,
	MaxHeaderBytes: 64 << 10, MaxBodyBytes: 1 << 20,
}

// readiness returns nil when the bot is ready to serve, else why not.
type readiness func(ctx context.Context) error

// healthServer serves /healthz (process up), /readyz (every adapter
// connected and the store saving turns; 503 with the reason otherwise) and
// any extra handlers (Slack's HTTP Events API), within lim.
func healthServer(addr string, ready readiness, extra map[string]http.Handler, lim httpLimits) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return &http.Server{
		Addr: addr, Handler: http.MaxBytesHandler(mux, lim.MaxBodyBytes),
		ReadHeaderTimeout: lim.ReadHeader, ReadTimeout: lim.Read, WriteTimeout: lim.Write, IdleTimeout: lim.Idle,
		MaxHeaderBytes: lim.MaxHeaderBytes,
	}
}

// shutdownPlan splits the one shutdown_timeout across the stages of a
// shutdown, which run one after the other, so that together they never take
// longer than it (Kubernetes kills the process after its grace period, 30 s
// by default).
type shutdownPlan struct {
	total time.Duration
	// drain: in-flight replies may finish (platforms no longer take events).
	drain time.Duration
	// interrupt: replies still running are cancelled and finalized as
	// interrupted (the engine's InterruptWait).
	interrupt time.Duration
	// close: the HTTP server and the platform adapters close.
	close time.Duration
}

// planShutdown gives replies most of total: 70% to finish, 20% to be
// finalized as interrupted, 10% to close the HTTP server and adapters.
func planShutdown(total time.Duration) shutdownPlan {
	interrupt, closing := total/5, total/10
	return shutdownPlan{total: total, drain: total - interrupt - closing, interrupt: interrupt, close: closing}
}
