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
	maxRedirects       = 5
)

// DefaultHosts are the platforms' file hosts.
var DefaultHosts = []string{"files.slack.com", "cdn.discordapp.com", "media.discordapp.net"}

// Config configures a Fetcher.
type Config struct {
	// MaxBytes is the per-file limit counted on the wire (default 20 MiB).
	MaxBytes int64
	// Timeout bounds one download, redirects included (default 60s).
	Timeout time.Duration
	// Concurrency bounds downloads in flight across the process (default 4).
	Concurrency int
	// AllowHosts are the hosts ("files.slack.com") or host:port pairs
	// ("127.0.0.1:4567") that may be fetched from. A bare host matches any
	// port of https; a host:port matches exactly.
	AllowHosts []string
	// Transport is the HTTP transport; nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

// Kind classifies why a download failed.
type Kind string

// The kinds of fetch failure.
const (
	KindNotAllowed Kind = "not_allowed" // the host (or a redirect's) is not on the allow-list
	KindTooLarge   Kind = "too_large"   // over MaxBytes (declared or counted)
	KindLoginPage  Kind = "login_page"  // an HTML page came back instead of the file (missing scope)
	KindStatus     Kind = "status"      // a non-2xx answer
	KindTimeout    Kind = "timeout"     // Timeout passed
	KindNetwork    Kind = "network"     // connection failed, redirect loop, broken body
)

// Error is a failed download.
type Error struct {
	Kind Kind
	// Host is the host that failed (never the full URL: it may carry tokens).
	Host string
	// Status is the HTTP status for KindStatus.
	Status int
	// Limit is the byte limit for KindTooLarge.
	Limit int64
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindTooLarge:
		return fmt.Sprintf("fetch: file from %s is larger than %d bytes", e.Host, e.Limit)
	case KindStatus:
		return fmt.Sprintf("fetch: %s answered HTTP %d", e.Host, e.Status)
	}
	if e.Err != nil {
		return fmt.Sprintf("fetch: %s: %s: %v", e.Host, e.Kind, e.Err)
	}
	return fmt.Sprintf("fetch: %s: %s", e.Host, e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// Fetcher downloads attachments safely. It is safe for concurrent use.
type Fetcher struct {
	cfg   Config
	allow map[string]bool
	hc    *http.Client
	sem   chan struct{}
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
	f := &Fetcher{cfg: cfg, allow: make(map[string]bool), sem: make(chan struct{}, cfg.Concurrency)}
	for _, h := range cfg.AllowHosts {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			f.allow[h] = true
		}
	}
	tr := cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	f.hc = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return &Error{Kind: KindNetwork, Host: req.URL.Host, Err: errors.New("too many redirects")}
			}
			if !f.Allowed(req.URL) {
				return &Error{Kind: KindNotAllowed, Host: req.URL.Host}
			}
			return nil
		},
	}
	return f
}

// MaxBytes is the per-file byte limit.
func (f *Fetcher) MaxBytes() int64 { return f.cfg.MaxBytes }

// HostOf returns the host:port of a base URL ("http://127.0.0.1:4567/api/"
// → "127.0.0.1:4567"), for adding a platform's API URL to the allow-list.
func HostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Host)
}

// Allowed reports whether u may be fetched.
func (f *Fetcher) Allowed(u *url.URL) bool {
	if u == nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return false
	}
	host := strings.ToLower(u.Host)
	if f.allow[host] {
		return true
	}
	// A bare allowed host matches it over https on the default port.
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		return u.Scheme == "https" && f.allow[host]
	}
	return u.Scheme == "https" && port == "443" && f.allow[name]
}

// Get downloads rawURL with the given extra headers (e.g. Authorization for
// Slack) and returns at most MaxBytes bytes. It fails with *Error.
func (f *Fetcher) Get(ctx context.Context, rawURL string, header http.Header) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &Error{Kind: KindNotAllowed, Err: errors.New("unparsable URL")}
	}
	if !f.Allowed(u) {
		return nil, &Error{Kind: KindNotAllowed, Host: u.Host}
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, f.ctxErr(ctx, u.Host)
	}
	defer func() { <-f.sem }()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Kind: KindNetwork, Host: u.Host, Err: err}
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return nil, fe
		}
		if ctx.Err() != nil {
			return nil, f.ctxErr(ctx, u.Host)
		}
		return nil, &Error{Kind: KindNetwork, Host: u.Host, Err: stripURL(err)}
	}
	defer resp.Body.Close()
	host := resp.Request.URL.Host
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &Error{Kind: KindStatus, Host: host, Status: resp.StatusCode}
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, &Error{Kind: KindTooLarge, Host: host, Limit: f.cfg.MaxBytes}
	}
	// Read one byte past the limit to tell "exactly the limit" from "more".
	capHint := f.cfg.MaxBytes
	if resp.ContentLength >= 0 && resp.ContentLength < capHint {
		capHint = resp.ContentLength
	}
	buf := make([]byte, 0, min(capHint, 1<<20)+1)
	lr := io.LimitReader(resp.Body, f.cfg.MaxBytes+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > f.cfg.MaxBytes {
			return nil, &Error{Kind: KindTooLarge, Host: host, Limit: f.cfg.MaxBytes}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return nil, f.ctxErr(ctx, host)
			}
			return nil, &Error{Kind: KindNetwork, Host: host, Err: stripURL(rerr)}
		}
	}
	if looksLikeHTML(buf, resp.Header.Get("Content-Type")) {
		return nil, &Error{Kind: KindLoginPage, Host: host}
	}
	return buf, nil
}

func (f *Fetcher) ctxErr(ctx context.Context, host string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Host: host, Err: ctx.Err()}
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

// looksLikeHTML reports whether a download is an HTML page rather than a
// file (Slack serves its login page with 200 when the token lacks files:read).
func looksLikeHTML(b []byte, contentType string) bool {
	return strings.HasPrefix(Sniff(b, "", contentType), "text/html")
}
