package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestDebugServer(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if srv, err := debugServer("", log); srv != nil || err != nil {
		t.Fatalf("empty address: %v, %v; want no server", srv, err)
	}
	if _, err := debugServer(":0", log); err == nil || !strings.Contains(err.Error(), "every interface") {
		t.Fatalf("host-less address: err = %v, want a refusal", err)
	}
	if _, err := debugServer("nonsense", log); err == nil {
		t.Fatal("bad address accepted")
	}
	srv, err := debugServer("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.Addr == "" {
		t.Fatal("no bound address")
	}
	resp, err := http.Get("http://" + srv.Addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(b) == 0 {
		t.Fatalf("pprof: %d %q", resp.StatusCode, b)
	}
}
