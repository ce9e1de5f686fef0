// Package fetch is cometbot's one safe downloader for files users attach on
// a platform. It fetches only from an allow-list of hosts (redirects
// included), counts bytes on the wire against a limit (never trusting
// Content-Length alone), bounds time and concurrency, and sniffs the media
// type from the bytes.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultMaxBytes    = 20 << 20
	DefaultTimeout     = 60 * time.Second
	DefaultConcurrency = 4
	// maxRedirects is how many redirects one download follows.
	maxRedirects = 5
)

// Buffer sizing in readBody.
const (
	// firstChunk is the first buffer of a body of unknown length.
	firstChunk = 64 << 10
	// trustAfter is how much of a body must arrive before its declared
	// Content-Length is allocated in full: a server that declares a large
	// size and sends little makes us allocate at most this much.
	trustAfter = 1 << 20
	// maxHeaderBytes bounds the response headers of the default transport.
	maxHeaderBytes = 64 << 10
)

// DefaultHosts are the platforms' file hosts.
var DefaultHosts = []string{"files.slack.com", "cdn.discordapp.com", "media.discordapp.net"}

// Config configures a Fetcher.
type Config struct {
	// MaxBytes is the per-file limit counted on the wire (default 20 MiB).
	// Bodies the transport decompresses are counted after decompression.
	MaxBytes int64
	// Timeout bounds one download, redirects included, from the moment it
	// gets one of the Concurrency slots (default 60s).
	Timeout time.Duration
	// Concurrency bounds downloads in flight on this Fetcher (default 4).
	Concurrency int
	// AllowHosts are the hosts that may be fetched from. A bare host
	// ("files.slack.com", "[::1]") matches it over https on the default port
	// only; a host:port ("127.0.0.1:4567", "[::1]:8080") matches exactly that
	// host and port over http or https. A URL ("http://127.0.0.1:4567/api/")
	// stands for its host:port, as HostOf returns it. Matching ignores case.
	AllowHosts []string
	// Transport is the HTTP transport; nil means a clone of
	// http.DefaultTransport with a 64 KiB limit on response headers.
	Transport http.RoundTripper
}

// Kind classifies why a download failed.
type Kind string

// The kinds of fetch failure.
const (
	KindNotAllowed Kind = "not_allowed" // the URL (or a redirect's) is not on the allow-list
	KindTooLarge   Kind = "too_large"   // over MaxBytes (declared or counted)
	KindLoginPage  Kind = "login_page"  // an HTML page came back instead of the file (missing scope)
	KindStatus     Kind = "status"      // a non-2xx answer
	KindTimeout    Kind = "timeout"     // Timeout (or the caller's deadline) passed
	KindNetwork    Kind = "network"     // connection failed, redirect loop, broken body, caller canceled
)

// Error is a failed download. Its text never carries the URL's path, query
// or user info (they may carry tokens): only the host.
type Error struct {
	Kind Kind
	// Host is the host:port that failed, as written in its URL (never the
	// full URL: it may carry tokens); empty when the URL did not parse.
	Host string
	// Status is the HTTP status for KindStatus.
	Status int
	// Limit is the byte limit for KindTooLarge.
	Limit int64
	// Err is the underlying error, if any, with the URL of a *url.Error
	// stripped.
	Err error
}

// Error describes the failure with the host only.
func (e *Error) Error() string {
	host := e.Host
	if host == "" {
		host = "(no host)"
	}
	switch e.Kind {
	case KindTooLarge:
		return fmt.Sprintf("fetch: file from %s is larger than %d bytes", host, e.Limit)
	case KindStatus:
		return fmt.Sprintf("fetch: %s answered HTTP %d", host, e.Status)
	}
	if e.Err != nil {
		return fmt.Sprintf("fetch: %s: %s: %v", host, e.Kind, e.Err)
	}
	return fmt.Sprintf("fetch: %s: %s", host, e.Kind)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Fetcher downloads attachments safely. It is safe for concurrent use.
// Create it with New.
type Fetcher struct {
	cfg Config
	// exact holds host:port entries, bare the hosts allowed over https:443.
	exact map[string]bool
	bare  map[string]bool
	// rt sends each request itself, with no http.Client around it: Get
	// follows redirects itself, checking each against the allow-list before
	// any request, parsing Location itself (the Client's parse error quotes
	// it), sending no Referer (it would carry the previous URL) and keeping
	// the caller's headers (the token) to the original origin.
	rt  http.RoundTripper
	sem chan struct{}
	// onWait, when set (by tests), runs when a Get finds every slot taken
	// and is about to wait for one.
	onWait func()
}

// New returns a Fetcher for cfg.
func New(cfg Config) *Fetcher {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	f := &Fetcher{
		cfg:   cfg,
		exact: make(map[string]bool),
		bare:  make(map[string]bool),
		sem:   make(chan struct{}, cfg.Concurrency),
	}
	for _, h := range cfg.AllowHosts {
		f.allowEntry(h)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxResponseHeaderBytes = maxHeaderBytes
		tr = t
	}
	f.rt = tr
	return f
}

// allowEntry adds one AllowHosts entry; malformed entries are ignored.
func (f *Fetcher) allowEntry(h string) {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.Contains(h, "://") {
		h = HostOf(h)
	}
	if h == "" || strings.ContainsAny(h, "/@?#") {
		return
	}
	if name, port, err := net.SplitHostPort(h); err == nil {
		if name != "" && validPort(port) {
			f.exact[net.JoinHostPort(name, port)] = true
		}
		return
	}
	if name := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"); name != "" {
		f.bare[name] = true
	}
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// MaxBytes is the per-file byte limit.
func (f *Fetcher) MaxBytes() int64 { return f.cfg.MaxBytes }

// HostOf returns the host:port of a base URL, with the scheme's default port
// when it names none ("http://127.0.0.1:4567/api/" → "127.0.0.1:4567",
// "https://slack.com/api/" → "slack.com:443"), for adding a platform's API
// URL to the allow-list. It returns "" for anything but an http(s) URL.
func HostOf(base string) string {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port, ok := portOf(u)
	if !ok {
		return ""
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// portOf returns u's port, or its scheme's default.
func portOf(u *url.URL) (string, bool) {
	if p := u.Port(); p != "" {
		return p, true
	}
	switch u.Scheme {
	case "https":
		return "443", true
	case "http":
		return "80", true
	}
	return "", false
}

// Allowed reports whether u may be fetched: an http or https URL without
// user info whose host matches AllowHosts (see Config).
func (f *Fetcher) Allowed(u *url.URL) bool {
	if u == nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Opaque != "" {
		return false
	}
	name := strings.ToLower(u.Hostname())
	port, _ := portOf(u)
	if name == "" || !validPort(port) {
		return false
	}
	if f.exact[net.JoinHostPort(name, port)] {
		return true
	}
	return u.Scheme == "https" && port == "443" && f.bare[name]
}

// Get downloads rawURL with the given extra headers (e.g. Authorization for
// Slack) and returns at most MaxBytes bytes. The headers go to rawURL's
// origin only, not to a redirect elsewhere. When every Concurrency slot is
// taken, Get waits for one (as long as ctx allows) before its Timeout
// starts. It fails with *Error.
func (f *Fetcher) Get(ctx context.Context, rawURL string, header http.Header) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Kind: KindNotAllowed, Err: errors.New("unparsable URL")}
	}
	if !f.Allowed(u) {
		return nil, &Error{Kind: KindNotAllowed, Host: u.Host}
	}
	select {
	case f.sem <- struct{}{}:
	default:
		if f.onWait != nil {
			f.onWait()
		}
		select {
		case f.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctxErr(ctx, u.Host)
		}
	}
	defer func() { <-f.sem }()
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()

	resp, final, err := f.follow(ctx, u, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	host := final.Host
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &Error{Kind: KindStatus, Host: host, Status: resp.StatusCode}
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, &Error{Kind: KindTooLarge, Host: host, Limit: f.cfg.MaxBytes}
	}
	data, err := readBody(resp.Body, f.cfg.MaxBytes, resp.ContentLength)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, &Error{Kind: KindTooLarge, Host: host, Limit: f.cfg.MaxBytes}
	case err != nil && ctx.Err() != nil:
		return nil, ctxErr(ctx, host)
	case err != nil:
		return nil, &Error{Kind: KindNetwork, Host: host, Err: stripURL(err)}
	}
	if looksLikeHTML(data, resp.Header.Get("Content-Type")) {
		return nil, &Error{Kind: KindLoginPage, Host: host}
	}
	return data, nil
}

// follow sends the request for u and follows up to maxRedirects redirects
// within the allow-list. It returns the final response, whose body the
// caller closes, and its URL.
func (f *Fetcher) follow(ctx context.Context, u *url.URL, header http.Header) (*http.Response, *url.URL, error) {
	origin := u
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, &Error{Kind: KindNetwork, Host: u.Host, Err: errors.New("cannot build the request")}
		}
		if sameOrigin(u, origin) {
			for k, vs := range header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
		}
		resp, err := f.rt.RoundTrip(req)
		if err == nil && resp == nil {
			err = errors.New("transport returned no response")
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctxErr(ctx, u.Host)
			}
			return nil, nil, &Error{Kind: KindNetwork, Host: u.Host, Err: stripURL(err)}
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, u, nil
		}
		// Drain a little of the redirect's body so the connection can be
		// reused, then move on.
		_, _ = io.CopyN(io.Discard, resp.Body, 2<<10)
		resp.Body.Close()
		if hops >= maxRedirects {
			return nil, nil, &Error{Kind: KindNetwork, Host: u.Host, Err: errors.New("too many redirects")}
		}
		next, err := u.Parse(loc)
		if err != nil {
			return nil, nil, &Error{Kind: KindNetwork, Host: u.Host, Err: errors.New("redirect to an unparsable Location")}
		}
		if !f.Allowed(next) {
			return nil, nil, &Error{Kind: KindNotAllowed, Host: next.Host}
		}
		u = next
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b *url.URL) bool {
	pa, _ := portOf(a)
	pb, _ := portOf(b)
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && pa == pb
}

var errTooLarge = errors.New("body over the limit")

// readBody reads r to its end and returns what it read, or errTooLarge when
// r holds more than limit bytes; it never reads more than limit+1 bytes.
// hint is the declared length (≤ limit; -1 when unknown). The buffer takes
// min(hint, trustAfter) at first and the whole hint only once that much has
// arrived, so a declared length costs at most its size plus trustAfter and a
// server that declares much and sends little cannot make us allocate what it
// declared. A body of unknown length grows the buffer geometrically, never
// beyond limit+1.
func readBody(r io.Reader, limit, hint int64) ([]byte, error) {
	r = io.LimitReader(r, limit+1)
	if hint > limit {
		hint = -1
	}
	size := min(int64(firstChunk), limit+1)
	if hint >= 0 {
		size = min(hint, trustAfter)
	}
	buf := make([]byte, size)
	n := 0
	for {
		m, err := fill(r, buf[n:])
		n += m
		if int64(n) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
		// buf is full: grow it only if more is coming.
		var one [1]byte
		m, err = fill(r, one[:])
		if m == 0 {
			if err == io.EOF {
				return buf[:n], nil
			}
			return nil, err
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		next := max(2*int64(n), firstChunk)
		if hint > int64(n) {
			next = hint
		}
		next = min(next, limit+1)
		grown := make([]byte, next)
		copy(grown, buf[:n])
		grown[n] = one[0]
		n++
		buf = grown
	}
}

// fill reads from r until b is full or r fails; it returns how much it read
// and the error (io.EOF at the end of r).
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func ctxErr(ctx context.Context, host string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Host: host, Err: context.DeadlineExceeded}
	}
	return &Error{Kind: KindNetwork, Host: host, Err: ctx.Err()}
}

// stripURL drops the URL (it may carry tokens) from a *url.Error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// looksLikeHTML reports whether a download is an HTML page rather than the
// file: Slack serves its login page, as text/html with status 200, when the
// token lacks files:read. A file the host serves under another declared type
// (an .html attachment as text/plain or application/octet-stream) is a file.
func looksLikeHTML(b []byte, contentType string) bool {
	if contentType != "" {
		mt, _, _ := strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "text/html" && mt != "application/xhtml+xml" {
			return false
		}
	}
	if Sniff(b, "", contentType) == "text/html" {
		return true
	}
	return contentType != "" && strings.HasPrefix(http.DetectContentType(trimBOM(b)), "text/html")
}
