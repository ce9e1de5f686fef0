package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugServer serves net/http/pprof on addr (COMETBOT_DEBUG_ADDR) until
// closed (Server.Addr is the bound address); it returns nil for an empty
// addr. It binds exactly addr. An addr
// without a host (":6060", every interface) is refused: exposing pprof
// beyond the machine must be spelled out ("0.0.0.0:6060"), and then it is
// logged as a warning.
func debugServer(addr string, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("COMETBOT_DEBUG_ADDR %q: %w", addr, err)
	}
	if host == "" {
		return nil, fmt.Errorf("COMETBOT_DEBUG_ADDR %q would serve pprof on every interface: give 127.0.0.1%s, or 0.0.0.0%s to expose it on purpose", addr, addr, addr)
	}
	if !loopbackHost(host) {
		log.Warn("COMETBOT_DEBUG_ADDR is not a loopback address: pprof (heap, goroutines, CPU profiles) is exposed to the network", "addr", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on COMETBOT_DEBUG_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: CPU profiles and traces stream for their ?seconds=.
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug server stopped", "err", err)
		}
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return srv, nil
}

// loopbackHost reports whether host names the loopback interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
