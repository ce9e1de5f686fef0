package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webDriver is a minimal W3C WebDriver client: the few JSON calls the
// browser test needs, against chromedriver.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:port/session/<id>
	hc      *http.Client
	session string
}

const elemKey = "element-6066-11e4-a52e-4f735466cecf"

func (d *webDriver) call(method, path string, body any) json.RawMessage {
	d.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		d.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || resp.StatusCode != 200 {
		d.t.Fatalf("webdriver %s %s: HTTP %d %s", method, path, resp.StatusCode, raw)
	}
	return out.Value
}

func (d *webDriver) find(from, css string) []string {
	d.t.Helper()
	path := "/elements"
	if from != "" {
		path = "/element/" + from + "/elements"
	}
	var els []map[string]string
	raw := d.call("POST", path, map[string]string{"using": "css selector", "value": css})
	if err := json.Unmarshal(raw, &els); err != nil {
		d.t.Fatalf("find %q: %s", css, raw)
	}
	out := make([]string, len(els))
	for i, e := range els {
		out[i] = e[elemKey]
	}
	return out
}

func (d *webDriver) one(css string) string {
	d.t.Helper()
	els := d.find("", css)
	if len(els) != 1 {
		d.t.Fatalf("%d elements match %q", len(els), css)
	}
	return els[0]
}

// waitFind waits (up to 20 s) until css matches at least n elements and
// returns them: a form submission's page loads after the click returns.
func (d *webDriver) waitFind(css string, n int) []string {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		els := d.find("", css)
		if len(els) >= n || time.Now().After(deadline) {
			return els
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *webDriver) attr(el, name string) string {
	var s string
	_ = json.Unmarshal(d.call("GET", "/element/"+el+"/attribute/"+name, nil), &s)
	return s
}

func (d *webDriver) text(el string) string {
	var s string
	_ = json.Unmarshal(d.call("GET", "/element/"+el+"/text", nil), &s)
	return s
}

func (d *webDriver) login(token string) {
	d.t.Helper()
	in := d.one("#token")
	d.call("POST", "/element/"+in+"/clear", map[string]any{})
	d.call("POST", "/element/"+in+"/value", map[string]any{"text": token})
	d.call("POST", "/element/"+d.one("#signin")+"/click", map[string]any{})
}

// startBrowser runs chromedriver and opens a headless Chromium session with
// JavaScript turned off; it skips the test when either is not installed.
func startBrowser(t *testing.T) *webDriver {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("no /usr/bin/chromium (apt-get install chromium chromium-driver)")
	}
	driver, err := exec.LookPath("chromedriver")
	if err != nil {
		t.Skip("no chromedriver (apt-get install chromium chromium-driver)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 60 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := hc.Get(root + "/status"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := &webDriver{t: t, base: root, hc: hc}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args":   []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1500", "--user-data-dir=" + t.TempDir()},
			// JavaScript off: the page must work without it.
			"prefs": map[string]any{"profile.managed_default_content_settings.javascript": 2},
		},
	}}}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(d.call("POST", "/session", caps), &s); err != nil || s.SessionID == "" {
		t.Fatalf("no session: %v", err)
	}
	d.base = root + "/session/" + s.SessionID
	t.Cleanup(func() { d.call("DELETE", "", nil) })
	return d
}

// TestDashboardInBrowser loads /admin in headless Chromium with JavaScript
// disabled: a wrong token is refused, the form logs in, the spend chart has
// one bar per day with the heights of the known usage, and a screenshot is
// saved (to docs/admin-dashboard.png with COMETBOT_UPDATE_SCREENSHOT=1).
func TestDashboardInBrowser(t *testing.T) {
	d := startBrowser(t)
	st := openStore(t)
	prefillKnown(t, st)
	srv := httptest.NewServer(newTestHandler(t, st, nil))
	defer srv.Close()

	d.call("POST", "/url", map[string]string{"url": srv.URL + "/admin"})
	if len(d.find("", "script")) != 0 {
		t.Error("the page carries scripts")
	}
	d.login("not-the-token")
	errEls := d.waitFind("#login-error", 1)
	if len(errEls) != 1 {
		t.Fatalf("%d elements match #login-error", len(errEls))
	}
	if got := d.text(errEls[0]); !strings.Contains(got, "not right") {
		t.Errorf("wrong token: %q", got)
	}
	if resp, err := http.PostForm(srv.URL+"/admin/login", map[string][]string{"token": {"not-the-token"}}); err != nil || resp.StatusCode != 401 {
		t.Errorf("wrong token status: %v %v", resp.StatusCode, err)
	}
	d.login(testToken)

	bars := d.waitFind("svg#spend g.day", 30)
	if len(bars) != 30 {
		t.Fatalf("%d bars, want one per day (30)", len(bars))
	}
	want := wantHeights(true)
	for i, b := range bars {
		sum := 0.0
		for _, r := range d.find(b, "rect") {
			h, _ := strconv.ParseFloat(d.attr(r, "height"), 64)
			sum += h
		}
		if math.Abs(sum-want[i]) > 0.05 {
			t.Errorf("bar %d (%s): height %.2f, want %.2f", i, d.attr(b, "data-day"), sum, want[i])
		}
	}
	if got := d.text(d.one("#month-total")); got == "" {
		t.Error("no month total")
	}

	var shot string
	_ = json.Unmarshal(d.call("GET", "/screenshot", nil), &shot)
	png, err := base64.StdEncoding.DecodeString(shot)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	out := filepath.Join(t.TempDir(), "admin-dashboard.png")
	if os.Getenv("COMETBOT_UPDATE_SCREENSHOT") == "1" {
		out = "../../docs/admin-dashboard.png"
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
}
