package fetch

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The hostile server's knobs, one byte of the fuzz input's ctrl each (0
// when ctrl is shorter).
const (
	cStatus       = iota // final status, from fuzzStatuses
	cLength              // Content-Length: none, exact, smaller, larger, huge, garbage, conflicting, negative
	cTransfer            // identity, chunked, broken chunked, truncated chunked, chunked with trailer
	cType                // Content-Type, from fuzzTypes
	cRepeat              // the body is repeated 1+this times
	cDelta               // how much smaller or larger the declared length is
	cChunk               // chunk size
	cRedirects           // redirect hops before the final answer (mod 8)
	cRedirectTo          // where redirects point, see hostile.redirect
	cRedirectCode        // redirect status, from fuzzRedirectCodes
	cFlags               // bit 0: prefix the body with an HTML login page
	cEncoding            // bit 0: gzip the body; bit 1: claim gzip without it
)

var (
	fuzzStatuses      = []int{200, 200, 200, 206, 204, 404, 500, 304, 301, 302, 101, 103, 299, 300, 199, 999}
	fuzzRedirectCodes = []int{301, 302, 303, 307, 308}
	fuzzTypes         = []string{"", "application/octet-stream", "text/html", "text/html; charset=utf-8", "image/png", "text/plain", "TEXT/HTML;;;", "application/xhtml+xml"}
)

const fuzzMaxBytes = 4096

// hostile answers each request with what the scenario registered under the
// request's id says, on a hijacked connection that it then closes.
type hostile struct {
	srv       *httptest.Server
	bait      *httptest.Server
	baitHits  atomic.Int64
	scenarios sync.Map // id → scenario
	nextID    atomic.Int64
}

type scenario struct {
	ctrl []byte
	body []byte // the body after decoding: what the client may return a prefix of
	wire []byte // the body as sent
}

func (s *scenario) knob(i int) int {
	if i < len(s.ctrl) {
		return int(s.ctrl[i])
	}
	return 0
}

func newHostile(tb testing.TB) *hostile {
	h := &hostile{}
	h.bait = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.baitHits.Add(1)
		w.Write([]byte("bait"))
	}))
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	tb.Cleanup(h.srv.Close)
	tb.Cleanup(h.bait.Close)
	return h
}

// path is where scenario id serves its hop: token-bearing, like a file URL.
func (h *hostile) path(id int64, hop int) string {
	return fmt.Sprintf("/s/%d/%d%s?%s", id, hop, secretPath, secretQuery)
}

func (h *hostile) serve(w http.ResponseWriter, r *http.Request) {
	var id int64
	var hop int
	fmt.Sscanf(r.URL.Path, "/s/%d/%d/", &id, &hop)
	conn, bw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	v, ok := h.scenarios.Load(id)
	if !ok {
		bw.WriteString("HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n")
		bw.Flush()
		return
	}
	s := v.(*scenario)
	if hop < s.knob(cRedirects)%8 {
		h.redirect(bw, s, id, hop)
	} else {
		h.final(bw, s)
	}
	bw.Flush()
}

func (h *hostile) redirect(bw *bufio.ReadWriter, s *scenario, id int64, hop int) {
	next := h.path(id, hop+1)
	var loc string
	switch s.knob(cRedirectTo) % 10 {
	case 0:
		loc = next
	case 1:
		loc = h.srv.URL + next
	case 2:
		loc = h.path(id, hop) // a loop
	case 3:
		loc = h.bait.URL + next
	case 4:
		loc = "http://[::1" + next // unparsable, and it quotes the path
	case 5:
		loc = strings.Replace(h.srv.URL, "http://", "http://user:pw@", 1) + next
	case 6:
		loc = strings.Replace(h.srv.URL, "http://", "ftp://", 1) + next
	case 7:
		loc = strings.TrimPrefix(h.bait.URL, "http:") + next
	case 8:
		loc = strings.Replace(h.srv.URL, "http://", "https://", 1) + next
	case 9:
		loc = "" // none
	}
	code := fuzzRedirectCodes[s.knob(cRedirectCode)%len(fuzzRedirectCodes)]
	fmt.Fprintf(bw, "HTTP/1.1 %d Moved\r\n", code)
	if loc != "" {
		fmt.Fprintf(bw, "Location: %s\r\n", loc)
	}
	bw.WriteString("Content-Length: 0\r\n\r\n")
}

func (h *hostile) final(bw *bufio.ReadWriter, s *scenario) {
	fmt.Fprintf(bw, "HTTP/1.1 %d Whatever\r\n", fuzzStatuses[s.knob(cStatus)%len(fuzzStatuses)])
	if ct := fuzzTypes[s.knob(cType)%len(fuzzTypes)]; ct != "" {
		fmt.Fprintf(bw, "Content-Type: %s\r\n", ct)
	}
	if s.knob(cEncoding)&3 != 0 {
		bw.WriteString("Content-Encoding: gzip\r\n")
	}
	n, delta := len(s.wire), s.knob(cDelta)
	switch s.knob(cLength) % 8 {
	case 1:
		fmt.Fprintf(bw, "Content-Length: %d\r\n", n)
	case 2:
		fmt.Fprintf(bw, "Content-Length: %d\r\n", max(0, n-1-delta))
	case 3:
		fmt.Fprintf(bw, "Content-Length: %d\r\n", n+1+delta)
	case 4:
		bw.WriteString("Content-Length: 99999999999999\r\n")
	case 5:
		bw.WriteString("Content-Length: lots\r\n")
	case 6:
		fmt.Fprintf(bw, "Content-Length: %d\r\nContent-Length: %d\r\n", n, n+1+delta)
	case 7:
		bw.WriteString("Content-Length: -1\r\n")
	}
	transfer := s.knob(cTransfer) % 5
	if transfer != 0 {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
	if transfer == 0 {
		bw.Write(s.wire)
		return
	}
	size := 1 + s.knob(cChunk)*16
	rest := s.wire
	for i := 0; len(rest) > 0; i++ {
		c := rest[:min(size, len(rest))]
		rest = rest[len(c):]
		fmt.Fprintf(bw, "%x\r\n%s\r\n", len(c), c)
		if transfer == 2 && i == 0 {
			bw.WriteString("zz\r\n")
			return
		}
	}
	switch transfer {
	case 1, 2:
		bw.WriteString("0\r\n\r\n")
	case 3: // truncated: no last chunk
	case 4:
		bw.WriteString("0\r\nX-Trailer: yes\r\n\r\n")
	}
}

// FuzzFetch runs Get against a hostile server whose answer (status,
// declared length, body, chunking, encoding, type, redirects) comes from
// the input. Get must never panic, never return more than MaxBytes bytes
// nor bytes the server did not send, return either data or a *Error whose
// text has no part of the URL but the host, and never reach a host off the
// list.
func FuzzFetch(f *testing.F) {
	h := newHostile(f)
	fetcher := New(Config{
		MaxBytes:   fuzzMaxBytes,
		Timeout:    10 * time.Second, // the server never stalls; this is a backstop
		AllowHosts: []string{HostOf(h.srv.URL)},
		// Keep-alive off: each answer ends with its connection, lies included.
		Transport: &http.Transport{DisableKeepAlives: true},
	})
	srvHost, baitHost := HostOf(h.srv.URL), HostOf(h.bait.URL)
	f.Fuzz(func(t *testing.T, ctrl, body []byte) {
		s := &scenario{ctrl: ctrl}
		if s.knob(cFlags)&1 != 0 {
			s.body = append(s.body, loginPage...)
		}
		s.body = append(s.body, bytes.Repeat(body, 1+s.knob(cRepeat))...)
		s.wire = s.body
		if s.knob(cEncoding)&1 != 0 {
			var buf bytes.Buffer
			gz := gzip.NewWriter(&buf)
			gz.Write(s.body)
			gz.Close()
			s.wire = buf.Bytes()
		}
		id := h.nextID.Add(1)
		h.scenarios.Store(id, s)
		defer h.scenarios.Delete(id)

		data, err := fetcher.Get(context.Background(), h.srv.URL+h.path(id, 0), nil)
		if n := h.baitHits.Load(); n != 0 {
			t.Fatalf("the host off the list got %d requests", n)
		}
		if err == nil {
			if data == nil {
				t.Fatal("nil data and nil error")
			}
			if len(data) > fuzzMaxBytes {
				t.Fatalf("got %d bytes, limit %d", len(data), fuzzMaxBytes)
			}
			if !bytes.HasPrefix(s.body, data) {
				t.Fatalf("got %d bytes the server did not send", len(data))
			}
			return
		}
		if data != nil {
			t.Fatalf("got %d bytes and an error", len(data))
		}
		var fe *Error
		if !errors.As(err, &fe) {
			t.Fatalf("err %v is a %T, not *Error", err, err)
		}
		switch fe.Kind {
		case KindNotAllowed, KindTooLarge, KindLoginPage, KindStatus, KindNetwork:
		default:
			t.Fatalf("kind %q: %v", fe.Kind, err)
		}
		if fe.Host != srvHost && fe.Host != baitHost {
			t.Fatalf("Host %q, want the server's or the bait's", fe.Host)
		}
		msg := err.Error()
		for _, secret := range []string{"secret-path", "SECRET", "files-pri", "/s/" + strconv.FormatInt(id, 10)} {
			if strings.Contains(msg, secret) {
				t.Fatalf("error %q contains %q", msg, secret)
			}
		}
	})
}
