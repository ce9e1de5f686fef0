package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, time.Minute
	for n := range 100 {
		d := backoff(n, lo, hi)
		ceil := min(lo<<min(n, 20), hi)
		if d < ceil/2 || d > ceil {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
		}
	}
}

// TestHeaders: the configured headers go to the server's origin only, not
// to a host it redirects to.
func TestHeaders(t *testing.T) {
	var got []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "other:"+r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, "server:"+r.Header.Get("Authorization"))
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	tr := httpTransport(&Server{URL: srv.URL + "/mcp", Headers: map[string]string{"authorization": "Bearer s"}}, nil)
	resp, err := tr.HTTPClient.Get(srv.URL + "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := []string{"server:Bearer s", "other:"}; !slices.Equal(got, want) {
		t.Errorf("seen %q, want %q", got, want)
	}
}

func TestStderrLog(t *testing.T) {
	var buf bytes.Buffer
	w := &stderrLog{log: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\n\n" + strings.Repeat("z", 10000) + "\n"))
	var lines []string
	for l := range strings.Lines(buf.String()) {
		var rec struct{ Line string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec.Line)
	}
	if len(lines) != 3 || lines[0] != "one" || lines[1] != "two" || len(lines[2]) != maxStderrLine {
		t.Errorf("lines %q", lines)
	}
	if tail := w.tail(); len(tail) > maxStderrTail+20 || !strings.HasPrefix(tail, ` (stderr: "zzz`) {
		t.Errorf("tail %q", tail)
	}
	w.Write([]byte("fatal: no token")) // no newline: the process died mid-line
	if tail := w.tail(); tail != ` (stderr: "fatal: no token")` {
		t.Errorf("tail %q", tail)
	}
	if tail := (*stderrLog)(nil).tail(); tail != "" {
		t.Errorf("nil tail %q", tail)
	}
}

// TestBodyLimit: a JSON response past the limit fails instead of being read
// whole; an SSE stream is left to the SDK's per-event bound.
func TestBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer srv.Close()
	c := &http.Client{Transport: &limitTransport{base: http.DefaultTransport, max: 100}}
	for typ, max := range map[string]int64{"application/json": 99, "application/json; charset=utf-8": 100, "text/event-stream": 10} {
		c.Transport.(*limitTransport).max = max
		resp, err := c.Get(srv.URL + "?type=" + url.QueryEscape(typ))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		tooLarge := errors.Is(err, errBodyTooLarge)
		if want := typ == "application/json"; tooLarge != want || !tooLarge && (err != nil || len(b) != 100) {
			t.Errorf("%s, limit %d: %d bytes, %v", typ, max, len(b), err)
		}
	}
}
