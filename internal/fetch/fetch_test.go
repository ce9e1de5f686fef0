package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// secretPath and secretQuery stand for the token-bearing parts of a file
// URL; no error may print them.
const (
	secretPath  = "/files-pri/T1-F1/secret-path/report.png"
	secretQuery = "token=SECRET-TOKEN"
)

func TestAllowed(t *testing.T) {
	f := New(Config{AllowHosts: []string{
		"files.slack.com", " CDN.discordapp.com ", "127.0.0.1:4567", "[::1]:8080", "[fe80::1]",
		"http://localhost:9000/api/", "bad/entry", "host:notaport", "", "user@userhost.example",
	}})
	tests := []struct {
		url  string
		want bool
	}{
		{"https://files.slack.com/x", true},
		{"https://FILES.Slack.COM/x", true},
		{"HTTPS://files.slack.com/x", true},
		{"https://files.slack.com:443/x", true},
		{"https://files.slack.com:/x", true}, // an empty port is the default one
		{"https://cdn.discordapp.com/attachments/1/2/a.png", true},
		{"http://files.slack.com/x", false}, // a bare host is https only
		{"http://files.slack.com:443/x", false},
		{"https://files.slack.com:8443/x", false},
		{"https://files.slack.com:0443/x", false},
		{"https://files.slack.com./x", false},
		{"https://files.slack.com.evil.example/x", false},
		{"https://evil.example/files.slack.com", false},
		{"https://evil.example/?u=https://files.slack.com/", false},
		{"https://user:pw@files.slack.com/x", false},
		{"https://@files.slack.com/x", false},
		{"https://files.slack.com@evil.example/x", false},
		{"ftp://files.slack.com/x", false},
		{"file:///etc/passwd", false},
		{"https:files.slack.com/x", false},
		{"//files.slack.com/x", false},
		{"/files-pri/x", false},
		{"https://media.discordapp.net/x", false}, // not in this list
		{"http://127.0.0.1:4567/x", true},
		{"https://127.0.0.1:4567/x", true},
		{"http://127.0.0.1:4568/x", false},
		{"http://127.0.0.1/x", false},
		{"https://127.0.0.1/x", false},
		{"http://[::1]:8080/x", true},
		{"https://[::1]:8080/x", true},
		{"http://[::1]:8081/x", false},
		{"http://[::1]/x", false},
		{"https://[fe80::1]/x", true},
		{"https://[FE80::1]:443/x", true},
		{"http://[fe80::1]/x", false},
		{"https://[fe80::1]:8443/x", false},
		{"http://localhost:9000/files/x", true},
		{"http://localhost/x", false},
		{"https://userhost.example/x", false}, // the malformed entry was ignored
		{"http://host:notaport/x", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			if tt.want {
				t.Errorf("%s: %v", tt.url, err)
			}
			continue
		}
		if got := f.Allowed(u); got != tt.want {
			t.Errorf("Allowed(%s) = %v, want %v", tt.url, got, tt.want)
		}
	}
	if f.Allowed(nil) {
		t.Error("Allowed(nil) = true")
	}
}

func TestHostOf(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:4567/api/": "127.0.0.1:4567",
		"https://slack.com/api/":     "slack.com:443",
		"http://Mock-Slack/api":      "mock-slack:80",
		"http://[::1]:8080/":         "[::1]:8080",
		"https://[::1]/":             "[::1]:443",
		"127.0.0.1:4567":             "",
		"ftp://files.example/":       "",
		"":                           "",
		"/api/":                      "",
	}
	for in, want := range tests {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// server is a test file host that counts the requests it receives.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// fileURL is a token-bearing URL for the file at s.
func (s *server) fileURL() string { return s.URL + secretPath + "?" + secretQuery }

// rawResponse answers with exactly resp on the connection, then closes it:
// for lying Content-Lengths and other things net/http refuses to send.
func rawResponse(resp string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		bw.WriteString(resp)
		bw.Flush()
	}
}

func write(body, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.Write([]byte(body))
	}
}

// checkErr fails unless err is a *Error of kind want whose text names no
// part of the URL but the host.
func checkErr(t *testing.T, err error, want Kind) *Error {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want *Error of kind %s", err, err, want)
	}
	if fe.Kind != want {
		t.Errorf("kind = %s (%v), want %s", fe.Kind, err, want)
	}
	checkNoSecret(t, err)
	return fe
}

func checkNoSecret(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, s := range []string{secretPath, "secret-path", "SECRET", "files-pri"} {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains %q", msg, s)
		}
	}
}

var png = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 100)...)

const loginPage = "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>Slack</title></head><body>Sign in to your workspace</body></html>"

func TestGet(t *testing.T) {
	const limit = 1000
	big := strings.Repeat("x", limit+1)
	exact := strings.Repeat("y", limit)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string // the data, when kind is ""
		kind    Kind
		status  int
	}{
		{name: "png", handler: write(string(png), "image/png"), want: string(png)},
		{name: "png declared as html", handler: write(string(png), "text/html"), want: string(png)},
		{name: "empty", handler: write("", "text/plain"), want: ""},
		{name: "exactly the limit", handler: write(exact, "text/plain"), want: exact},
		{name: "exactly the limit chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(exact[:10]))
			w.(http.Flusher).Flush()
			w.Write([]byte(exact[10:]))
		}, want: exact},
		{name: "one over the limit", handler: write(big, "text/plain"), kind: KindTooLarge},
		{name: "one over the limit chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(big[:10]))
			w.(http.Flusher).Flush()
			w.Write([]byte(big[10:]))
		}, kind: KindTooLarge},
		{name: "declared over the limit", handler: rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\nsmall"), kind: KindTooLarge},
		{name: "declared more than sent", handler: rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"), kind: KindNetwork},
		{name: "declared less than sent", handler: rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfirst, then more"), want: "firs"},
		{name: "declared less than sent over the limit", handler: rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd" + big), want: "abcd"},
		{name: "no length, over the limit", handler: rawResponse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big), kind: KindTooLarge},
		{name: "broken chunking", handler: rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nzz\r\n"), kind: KindNetwork},
		{name: "login page", handler: write(loginPage, "text/html; charset=utf-8"), kind: KindLoginPage},
		{name: "login page with BOM", handler: write("\xef\xbb\xbf"+loginPage, "text/html"), kind: KindLoginPage},
		{name: "login page, no doctype", handler: write("\n<!-- sso -->\n"+strings.Repeat(" ", 600)+"<html><body>Sign in</body></html>", "text/html"), kind: KindLoginPage},
		{name: "login page, no type", handler: rawResponse("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(loginPage)) + "\r\n\r\n" + loginPage), kind: KindLoginPage},
		{name: "html file as text/plain", handler: write(loginPage, "text/plain; charset=utf-8"), want: loginPage},
		{name: "html file as octet-stream", handler: write(loginPage, "application/octet-stream"), want: loginPage},
		{name: "text declared html", handler: write("just words", "text/html"), want: "just words"},
		{name: "404", handler: http.NotFound, kind: KindStatus, status: 404},
		{name: "500", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, kind: KindStatus, status: 500},
		{name: "304", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) }, kind: KindStatus, status: 304},
		{name: "redirect without Location", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(302) }, kind: KindStatus, status: 302},
		{name: "redirect loop", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}, kind: KindNetwork},
		{name: "endless redirects", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.Path+"x", http.StatusTemporaryRedirect)
		}, kind: KindNetwork},
		{name: "redirect to an unparsable Location", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://[::1"+r.URL.RequestURI())
			w.WriteHeader(http.StatusFound)
		}, kind: KindNetwork},
		{name: "redirect with user info", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://user:pw@"+r.Host+"/elsewhere", http.StatusFound)
		}, kind: KindNotAllowed},
		{name: "redirect to another scheme", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "ftp://"+r.Host+"/elsewhere", http.StatusFound)
		}, kind: KindNotAllowed},
		{name: "relative redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/final" {
				write("arrived", "text/plain")(w, r)
				return
			}
			http.Redirect(w, r, "/final", http.StatusMovedPermanently)
		}, want: "arrived"},
		{name: "gzip bomb", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			gz.Write(bytes.Repeat([]byte{0}, 100*limit))
			gz.Close()
		}, kind: KindTooLarge},
		{name: "gzip small", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			gz.Write([]byte(exact))
			gz.Close()
		}, want: exact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.handler)
			// No keep-alive: the transport would log the leftovers of
			// lying bodies arriving on an idle connection.
			f := New(Config{MaxBytes: limit, AllowHosts: []string{HostOf(s.URL)}, Transport: &http.Transport{DisableKeepAlives: true}})
			got, err := f.Get(context.Background(), s.fileURL(), nil)
			if tt.kind == "" {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if string(got) != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				if got == nil {
					t.Error("got nil data")
				}
				return
			}
			if got != nil {
				t.Errorf("got %d bytes with the error", len(got))
			}
			fe := checkErr(t, err, tt.kind)
			if fe.Host != HostOf(s.URL) {
				t.Errorf("Host = %q, want %q", fe.Host, HostOf(s.URL))
			}
			if fe.Status != tt.status {
				t.Errorf("Status = %d, want %d", fe.Status, tt.status)
			}
			if tt.kind == KindTooLarge && fe.Limit != limit {
				t.Errorf("Limit = %d, want %d", fe.Limit, limit)
			}
		})
	}
}

func TestGetNotAllowed(t *testing.T) {
	s := newServer(t, write("file", "text/plain"))
	other := newServer(t, write("file", "text/plain"))
	f := New(Config{AllowHosts: append([]string{HostOf(other.URL)}, DefaultHosts...)})
	for _, raw := range []string{
		s.fileURL(),
		strings.Replace(s.fileURL(), "http://", "http://user:pw@", 1),
		strings.Replace(s.fileURL(), "http://", "ftp://", 1),
		"http://files.slack.com" + secretPath + "?" + secretQuery, // http, not https
		"https://files.slack.com:8443" + secretPath + "?" + secretQuery,
		"%zz" + secretPath + "?" + secretQuery,
		"http://[::1" + secretPath + "?" + secretQuery,
	} {
		got, err := f.Get(context.Background(), raw, nil)
		if got != nil {
			t.Errorf("%s: got data", raw)
		}
		checkErr(t, err, KindNotAllowed)
	}
	if n := s.hits.Load(); n != 0 {
		t.Errorf("the unlisted server got %d requests", n)
	}
}

func TestRedirects(t *testing.T) {
	bait := newServer(t, write("bait", "text/plain"))
	type seen struct{ auth, referer, path string }
	var mu sync.Mutex
	var log []seen
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, seen{r.Header.Get("Authorization"), r.Header.Get("Referer"), r.URL.Path})
	}
	b := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		record(r)
		write("from b", "text/plain")(w, r)
	})
	a := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		record(r)
		switch r.URL.Query().Get("to") {
		case "bait":
			http.Redirect(w, r, bait.URL+"/caught", http.StatusFound)
		case "b":
			http.Redirect(w, r, b.URL+"/other", http.StatusFound)
		case "self":
			http.Redirect(w, r, "/signed?sig=1", http.StatusSeeOther)
		default:
			write("from a", "text/plain")(w, r)
		}
	})
	f := New(Config{AllowHosts: []string{HostOf(a.URL), HostOf(b.URL)}})
	hdr := http.Header{"Authorization": {"Bearer xoxb-secret"}}
	get := func(to string) ([]byte, error) {
		mu.Lock()
		log = nil
		mu.Unlock()
		return f.Get(context.Background(), a.URL+secretPath+"?"+secretQuery+"&to="+to, hdr)
	}

	// To a host off the list: refused before any request reaches it.
	_, err := get("bait")
	fe := checkErr(t, err, KindNotAllowed)
	if fe.Host != HostOf(bait.URL) {
		t.Errorf("Host = %q, want the bait's %q", fe.Host, HostOf(bait.URL))
	}
	if n := bait.hits.Load(); n != 0 {
		t.Errorf("the bait got %d requests", n)
	}

	// Within the origin: the token follows; no Referer leaks the URL.
	got, err := get("self")
	if err != nil || string(got) != "from a" {
		t.Fatalf("self redirect: %q, %v", got, err)
	}
	mu.Lock()
	if len(log) != 2 || log[0].auth != "Bearer xoxb-secret" || log[1].auth != "Bearer xoxb-secret" || log[1].path != "/signed" {
		t.Errorf("requests %+v, want two with the token", log)
	}
	for _, s := range log {
		if s.referer != "" {
			t.Errorf("Referer %q sent", s.referer)
		}
	}
	mu.Unlock()

	// To another listed host: followed, but the token stays home.
	got, err = get("b")
	if err != nil || string(got) != "from b" {
		t.Fatalf("redirect to b: %q, %v", got, err)
	}
	mu.Lock()
	if len(log) != 2 || log[1].auth != "" || log[1].referer != "" {
		t.Errorf("requests %+v, want b to get neither token nor Referer", log)
	}
	mu.Unlock()
}

func TestHeadersPassedThrough(t *testing.T) {
	var got http.Header
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		write("ok", "text/plain")(w, r)
	})
	f := New(Config{AllowHosts: []string{HostOf(s.URL)}})
	hdr := http.Header{"Authorization": {"Bearer xoxb-1"}, "X-Extra": {"a", "b"}}
	if _, err := f.Get(context.Background(), s.fileURL(), hdr); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "Bearer xoxb-1" || strings.Join(got.Values("X-Extra"), ",") != "a,b" {
		t.Errorf("server saw headers %v", got)
	}
	if hdr.Get("Authorization") != "Bearer xoxb-1" || len(hdr) != 2 {
		t.Errorf("caller's header changed: %v", hdr)
	}
}

// countingConn counts the bytes the client reads from the network.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func countingTransport(n *atomic.Int64) *http.Transport {
	var d net.Dialer
	return &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, n}, nil
	}}
}

func TestEndlessBodyCut(t *testing.T) {
	const limit = 256 << 10
	// Past this the server gives up: a client that reads everything would
	// have read it all. Socket buffers let the server get somewhat past the
	// limit even when the client stops right at it.
	const giveUp = limit + 64<<20
	var written atomic.Int64
	done := make(chan struct{})
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			written.Store(0)
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				defer func() { done <- struct{}{} }()
				conn, bw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					panic(err)
				}
				defer conn.Close()
				if chunked {
					bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				} else {
					bw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
				}
				chunk := bytes.Repeat([]byte{'z'}, 32<<10)
				for written.Load() < giveUp {
					if chunked {
						fmt.Fprintf(bw, "%x\r\n", len(chunk))
					}
					n, err := bw.Write(chunk)
					written.Add(int64(n))
					if chunked {
						bw.WriteString("\r\n")
					}
					if err != nil {
						return
					}
				}
			})
			var read atomic.Int64
			f := New(Config{MaxBytes: limit, AllowHosts: []string{HostOf(s.URL)}, Transport: countingTransport(&read)})
			_, err := f.Get(context.Background(), s.fileURL(), nil)
			checkErr(t, err, KindTooLarge)
			<-done // the server noticed the client hang up
			t.Logf("limit %d: client read %d bytes, server wrote %d", limit, read.Load(), written.Load())
			if n := read.Load(); n > limit+1+64<<10 {
				t.Errorf("client read %d bytes from the network, limit %d", n, limit)
			}
			if n := written.Load(); n >= giveUp {
				t.Errorf("server wrote %d bytes: the client read on past the limit", n)
			}
		})
	}
}

func TestSlowBodyTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("the start"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the client gave up
	})
	f := New(Config{Timeout: 200 * time.Millisecond, AllowHosts: []string{HostOf(s.URL)}})
	_, err := f.Get(context.Background(), s.fileURL(), nil)
	checkErr(t, err, KindTimeout)

	// A caller's cancellation is not a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	s2 := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("the start"))
		w.(http.Flusher).Flush()
		cancel()
		<-r.Context().Done()
	})
	f2 := New(Config{AllowHosts: []string{HostOf(s2.URL)}})
	_, err = f2.Get(ctx, s2.fileURL(), nil)
	fe := checkErr(t, err, KindNetwork)
	if !errors.Is(fe, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
}

func TestSlowHeadersTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	f := New(Config{Timeout: 100 * time.Millisecond, AllowHosts: []string{HostOf(s.URL)}})
	_, err := f.Get(context.Background(), s.fileURL(), nil)
	fe := checkErr(t, err, KindTimeout)
	if !errors.Is(fe, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
}

func TestConcurrencyBound(t *testing.T) {
	const limit, total = 2, 7
	var inFlight, peak atomic.Int64
	arrived := make(chan struct{}, total)
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-release
		inFlight.Add(-1)
		write("ok", "text/plain")(w, r)
	})
	waiting := make(chan struct{}, total)
	f := New(Config{Concurrency: limit, AllowHosts: []string{HostOf(s.URL)}})
	f.onWait = func() { waiting <- struct{}{} }

	errs := make(chan error, total)
	for range total {
		go func() {
			_, err := f.Get(context.Background(), s.fileURL(), nil)
			errs <- err
		}()
	}
	// Every Get either reaches the server or finds the slots taken. With
	// the bound honoured that is limit of the one and the rest of the other,
	// and nobody can move on until a handler is released.
	var nArrived, nWaiting int
	for nArrived+nWaiting < total {
		select {
		case <-arrived:
			nArrived++
		case <-waiting:
			nWaiting++
		}
	}
	if nArrived != limit || nWaiting != total-limit {
		t.Fatalf("%d requests at the server and %d waiting, want %d and %d", nArrived, nWaiting, limit, total-limit)
	}
	// Release one handler at a time: each frees a slot for one waiter.
	for i := range total {
		release <- struct{}{}
		if i < total-limit {
			<-arrived
		}
	}
	for range total {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if p := peak.Load(); p != limit {
		t.Errorf("peak concurrency %d, want %d", p, limit)
	}
}

func TestWaitForSlotCanceled(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	})
	waiting := make(chan struct{}, 1)
	f := New(Config{Concurrency: 1, AllowHosts: []string{HostOf(s.URL)}})
	f.onWait = func() { waiting <- struct{}{} }
	first := make(chan error, 1)
	go func() {
		_, err := f.Get(context.Background(), s.fileURL(), nil)
		first <- err
	}()
	<-arrived
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() {
		_, err := f.Get(ctx, s.fileURL(), nil)
		second <- err
	}()
	<-waiting
	cancel()
	checkErr(t, <-second, KindNetwork)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := s.hits.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

// trickle gives n bytes of body, then an error (or io.EOF).
type trickle struct {
	n   int
	err error
}

func (r *trickle) Read(b []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	m := min(len(b), r.n, 4096)
	r.n -= m
	return m, nil
}

func TestReadBody(t *testing.T) {
	const limit = 4 << 20
	boom := errors.New("boom")
	tests := []struct {
		name    string
		body    int
		err     error
		hint    int64
		wantErr error
		maxCap  int
	}{
		{name: "empty", body: 0, hint: 0, maxCap: 0},
		{name: "empty unknown", body: 0, hint: -1, maxCap: firstChunk},
		{name: "declared", body: 3 << 20, hint: 3 << 20, maxCap: 3 << 20},
		{name: "declared exactly the limit", body: limit, hint: limit, maxCap: limit},
		{name: "declared much, sent little", body: 10, hint: limit, wantErr: io.ErrUnexpectedEOF},
		{name: "declared much, sent little, EOF", body: 10, hint: limit, maxCap: trustAfter},
		{name: "declared little, sent more", body: 5000, hint: 100, maxCap: firstChunk},
		{name: "unknown", body: 3 << 20, hint: -1, maxCap: 4 << 20},
		{name: "unknown at the limit", body: limit, hint: -1, maxCap: limit + 1},
		{name: "unknown over the limit", body: limit + 1, hint: -1, wantErr: errTooLarge},
		{name: "declared over the limit", body: limit + 1, hint: limit + 1, wantErr: errTooLarge},
		{name: "endless", body: 1 << 40, hint: -1, wantErr: errTooLarge},
		{name: "broken", body: 5000, err: boom, hint: -1, wantErr: boom},
		{name: "broken at a chunk boundary", body: firstChunk, err: boom, hint: -1, wantErr: boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if err == nil {
				err = io.EOF
				if errors.Is(tt.wantErr, io.ErrUnexpectedEOF) {
					err = io.ErrUnexpectedEOF
				}
			}
			r := &trickle{n: tt.body, err: err}
			got, gerr := readBody(r, limit, tt.hint)
			if tt.wantErr != nil {
				if !errors.Is(gerr, tt.wantErr) || got != nil {
					t.Fatalf("got %d bytes, %v; want %v", len(got), gerr, tt.wantErr)
				}
				if tt.name == "endless" && r.n < 1<<40-(limit+1) {
					t.Errorf("read %d bytes, want at most limit+1", 1<<40-r.n)
				}
				return
			}
			if gerr != nil {
				t.Fatal(gerr)
			}
			if len(got) != tt.body || got == nil {
				t.Errorf("got %d bytes, want %d", len(got), tt.body)
			}
			if cap(got) > tt.maxCap {
				t.Errorf("cap %d, want at most %d", cap(got), tt.maxCap)
			}
		})
	}
}

// TestGetMemory checks what a download allocates: about the file's size for
// a declared length, never the declared size of a body that does not come.
func TestGetMemory(t *testing.T) {
	const size = DefaultMaxBytes
	body := bytes.Repeat([]byte{1}, size)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("lie") != "" {
			conn, bw, _ := http.NewResponseController(w).Hijack()
			defer conn.Close()
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nten bytes.", size)
			bw.Flush()
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	})
	f := New(Config{AllowHosts: []string{HostOf(s.URL)}})
	allocated := func(raw string) (uint64, []byte, error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		data, err := f.Get(context.Background(), raw, nil)
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, data, err
	}
	n, data, err := allocated(s.URL + "/file")
	if err != nil || len(data) != size {
		t.Fatalf("got %d bytes, %v", len(data), err)
	}
	t.Logf("downloading %d bytes allocated %d", size, n)
	if n > size+size/8 {
		t.Errorf("downloading %d bytes allocated %d", size, n)
	}
	n, _, err = allocated(s.URL + "/file?lie=1")
	checkErr(t, err, KindNetwork)
	t.Logf("a body that declared %d bytes and sent 10 allocated %d", size, n)
	if n > size/4 {
		t.Errorf("a body that declared %d bytes and sent 10 allocated %d", size, n)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: KindTooLarge, Host: "files.slack.com", Limit: 10}, "fetch: file from files.slack.com is larger than 10 bytes"},
		{&Error{Kind: KindStatus, Host: "files.slack.com", Status: 404}, "fetch: files.slack.com answered HTTP 404"},
		{&Error{Kind: KindNotAllowed, Host: "evil.example"}, "fetch: evil.example: not_allowed"},
		{&Error{Kind: KindNetwork, Err: errors.New("unparsable URL")}, "fetch: (no host): network: unparsable URL"},
		{&Error{Kind: KindTimeout, Host: "h:1", Err: context.DeadlineExceeded}, "fetch: h:1: timeout: context deadline exceeded"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
