package slack

import (
	"net/http"
	"strings"
	"time"
)

// Metrics receives the adapter's reports for monitoring (internal/metrics
// implements it).
type Metrics interface {
	// PlatformRequest reports one Web API call: its method (e.g.
	// "chat.postMessage"; "other" for a URL outside the API, such as a
	// file upload) and HTTP status code, 0 when there was no response.
	// Slack's rate limits answer 429.
	PlatformRequest(platform, method string, status int)
	// PlatformWait reports how long a call waited for its pacing lane.
	PlatformWait(platform string, d time.Duration)
}

// metricsTransport reports every Web API call: every call slack-go makes
// goes through the adapter's HTTP client.
type metricsTransport struct {
	next http.RoundTripper // nil: http.DefaultTransport
	api  string            // Config.APIURL, with its trailing slash
	mx   Metrics
}

// RoundTrip implements http.RoundTripper.
func (t *metricsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.mx.PlatformRequest(Platform, apiMethod(t.api, req), status)
	return resp, err
}

// apiMethod is the Web API method a request calls, or "other": a bounded
// label (method names are short words and dots).
func apiMethod(api string, req *http.Request) string {
	u := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	m, ok := strings.CutPrefix(u, api)
	if !ok || m == "" || len(m) > 64 {
		return "other"
	}
	for _, r := range m {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '.' {
			return "other"
		}
	}
	return m
}
