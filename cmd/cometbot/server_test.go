package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestShutdownPlanFitsTheTimeout(t *testing.T) {
	for _, total := range []time.Duration{25 * time.Second, 30 * time.Second, 10 * time.Second, time.Second, 7 * time.Millisecond} {
		p := planShutdown(total)
		if sum := p.drain + p.interrupt + p.close; sum != total || p.total != total {
			t.Errorf("plan for %s sums to %s: %+v", total, sum, p)
		}
		if p.drain <= 0 || p.interrupt <= 0 || p.close <= 0 {
			t.Errorf("plan for %s has an empty stage: %+v", total, p)
		}
		if p.drain < p.interrupt || p.drain < p.close {
			t.Errorf("plan for %s gives replies less time to finish than to close: %+v", total, p)
		}
	}
}

// testLimits are short limits so the test sees connections closed quickly.
var testLimits = httpLimits{
	ReadHeader: 300 * time.Millisecond, Read: 500 * time.Millisecond, Write: 2 * time.Second, Idle: 300 * time.Millisecond,
	MaxHeaderBytes: 4 << 10, MaxBodyBytes: 1 << 10,
}

// startTestServer serves healthServer (plus a handler that reads its whole
// body, like the Slack endpoints) on loopback with testLimits.
func startTestServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		case err != nil:
			http.Error(w, "bad body", http.StatusBadRequest)
		default:
			_, _ = w.Write(b)
		}
	})
	srv := healthServer("", func(context.Context) error { return nil }, map[string]http.Handler{"POST /echo": body}, testLimits)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestHTTPServerClosesSlowAndIdleConnections: a connection that sends a
// body too slowly, one that stays idle after a request, one that sends no
// request and one that never finishes its headers are all closed by the
// server (each read to EOF, with a cap far above the limits).
func TestHTTPServerClosesSlowAndIdleConnections(t *testing.T) {
	addr := startTestServer(t)
	tests := []struct {
		name string
		send string
		want string // in what the server sent before closing ("" = anything)
	}{
		{"slow body", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a few bytes", ""},
		{"idle after a request", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "200 OK"},
		{"silent", "", ""},
		{"headers never finished", "GET /healthz HTTP/1.1\r\nHost: x\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			const wideCap = 20 * time.Second
			if err := c.SetReadDeadline(time.Now().Add(wideCap)); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept the connection open for %s", wideCap)
			}
			if tt.want != "" && !strings.Contains(string(got), tt.want) {
				t.Fatalf("server sent %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHTTPServerBoundsRequests(t *testing.T) {
	addr := startTestServer(t)
	big := strings.Repeat("x", 2<<10)
	resp, err := http.Post("http://"+addr+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: HTTP %d, want 413", len(big), resp.StatusCode)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("h", 16<<10)+"\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, "431") {
		t.Errorf("oversized headers: %q, want 431", line)
	}
}
