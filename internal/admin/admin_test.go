package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/storage"
)

const testToken = "adm-0123456789-secret"

// testNow is the dashboard's clock in tests.
var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// knownCost is what the prefilled store spent on day i of the chart (0 =
// 29 days ago): gpt-4o (i+1)×$0.10, plus $0.05 of claude-haiku on even days.
func knownCost(i int) (gpt, claude float64) {
	gpt = float64(i+1) * 0.10
	if i%2 == 0 {
		claude = 0.05
	}
	return gpt, claude
}

// prefillKnown writes the usage knownCost describes, in workspace slack/T1
// (users U1 and U2, channel C1), and a little in discord/G1.
func prefillKnown(t testing.TB, st *storage.Store) {
	ctx := context.Background()
	day0 := time.Date(testNow.Year(), testNow.Month(), testNow.Day(), 9, 0, 0, 0, time.UTC).AddDate(0, 0, -29)
	for i := range 30 {
		d := day0.AddDate(0, 0, i)
		gpt, claude := knownCost(i)
		entries := []storage.UsageEntry{{Time: d, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "gpt-4o",
			Counter: storage.Counter{Replies: 1, InputTokens: int64(1000 * (i + 1)), OutputTokens: 500, Cost: gpt}}}
		if claude > 0 {
			entries = append(entries, storage.UsageEntry{Time: d, Workspace: "slack/T1", Channel: "C1", User: "U2", Model: "claude-haiku",
				Counter: storage.Counter{Replies: 1, InputTokens: 100, OutputTokens: 100, Cost: claude}})
		}
		for _, e := range entries {
			if err := st.AddUsage(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.AddUsage(ctx, storage.UsageEntry{Time: testNow, Workspace: "discord/G1", Channel: "C9", User: "U9", Model: "gemini",
		Counter: storage.Counter{Replies: 1, InputTokens: 10, OutputTokens: 10, Cost: 0.01}}); err != nil {
		t.Fatal(err)
	}
}

func openStore(t testing.TB) *storage.Store {
	st, err := storage.Open(filepath.Join(t.TempDir(), "admin.db"), storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newTestHandler serves a dashboard over st with budgets, errors and health.
func newTestHandler(t testing.TB, st *storage.Store, logs io.Writer) *Handler {
	if logs == nil {
		logs = io.Discard
	}
	h, err := New(Options{
		Token: testToken, Usage: st, Now: func() time.Time { return testNow },
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		Budgets: func() Budgets { return Budgets{User: Limit{Daily: 4, Monthly: 50}, Workspace: Limit{Monthly: 100}} },
		Errors:  func() []ErrorCount { return []ErrorCount{{"timeout", 3}, {"store", 1}} },
		Health: func(context.Context) Health {
			return Health{Platforms: []Platform{{"slack", true}, {"discord", false}}, GatewayOK: true, CatalogModels: 321, CatalogFetched: testNow.Add(-5 * time.Minute)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var rectRe = regexp.MustCompile(`<rect x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)"`)

// barHeights returns the summed rect heights of each day group of the chart with this id.
func barHeights(t *testing.T, page, id string) []float64 {
	t.Helper()
	start := strings.Index(page, `<svg id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no chart %s", id)
	}
	svg := page[start:]
	svg = svg[:strings.Index(svg, "</svg>")]
	var out []float64
	for _, g := range strings.Split(svg, `<g class="day"`)[1:] {
		sum := 0.0
		for _, m := range rectRe.FindAllStringSubmatch(g[:strings.Index(g, "</g>")], -1) {
			f, _ := strconv.ParseFloat(m[1], 64)
			sum += f
		}
		out = append(out, sum)
	}
	return out
}

// wantHeights are the bar heights of the spend chart for the known usage.
func wantHeights(withDiscord bool) []float64 {
	totals := make([]float64, 30)
	top := 0.0
	for i := range totals {
		g, c := knownCost(i)
		totals[i] = g + c
		if withDiscord && i == 29 {
			totals[i] += 0.01
		}
		top = math.Max(top, totals[i])
	}
	for i := range totals {
		totals[i] = totals[i] / top * chartHeight
	}
	return totals
}

func TestDashboard(t *testing.T) {
	st := openStore(t)
	prefillKnown(t, st)
	var logs strings.Builder
	srv := httptest.NewServer(newTestHandler(t, st, &logs))
	defer srv.Close()
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	if code, body := get(t, plain, srv.URL+"/admin"); code != 401 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("no credentials: %d %q", code, body)
	}
	if code, _ := get(t, plain, srv.URL+"/admin", "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong bearer: %d", code)
	}
	resp, err := plain.PostForm(srv.URL+"/admin/login", url.Values{"token": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token in the form: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	code, page := get(t, plain, srv.URL+"/admin", "Authorization", "Bearer "+testToken)
	if code != 200 {
		t.Fatalf("bearer: %d", code)
	}
	for _, want := range []string{"U1", "claude-haiku", "timeout", "not connected", "321 models, 5m old", "Per user: daily $4.00, monthly $50.00", "discord/G1"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	got, want := barHeights(t, page, "spend"), wantHeights(true)
	if len(got) != 30 {
		t.Fatalf("%d bars, want 30", len(got))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 0.05 {
			t.Errorf("bar %d height %.2f, want %.2f", i, got[i], want[i])
		}
	}
	// The workspace filter leaves discord out.
	_, page = get(t, plain, srv.URL+"/admin?ws=slack/T1", "Authorization", "Bearer "+testToken)
	if strings.Contains(page, "gemini") || !strings.Contains(page, "<option value=\"slack/T1\" selected>") {
		t.Error("workspace filter not applied")
	}
	for i, h := range barHeights(t, page, "spend") {
		if w := wantHeights(false)[i]; math.Abs(h-w) > 0.05 {
			t.Errorf("filtered bar %d height %.2f, want %.2f", i, h, w)
		}
	}

	// The login form sets an HttpOnly, SameSite=Strict cookie that is not the token.
	resp, err = plain.PostForm(srv.URL+"/admin/login", url.Values{"token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || strings.Contains(cs[0].Value, testToken) {
		t.Fatalf("login: %d %+v", resp.StatusCode, cs)
	}
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL + "/admin")
	jar.SetCookies(u, cs)
	if code, _ := get(t, &http.Client{Jar: jar}, srv.URL+"/admin"); code != 200 {
		t.Errorf("with the cookie: %d", code)
	}
	if strings.Contains(logs.String(), testToken) || strings.Contains(logs.String(), "wrong") {
		t.Errorf("logs show a token: %s", logs.String())
	}
}

// prefillLarge writes 100k conversations and a year of usage (3
// workspaces, 300 users, 60 channels, 6 models, 40 replies a day each).
func prefillLarge(tb testing.TB, st *storage.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan func() error, 256)
	for range 32 {
		wg.Go(func() {
			for f := range work {
				if err := f(); err != nil {
					tb.Error(err)
				}
			}
		})
	}
	for i := range 100_000 {
		work <- func() error {
			key := fmt.Sprintf("slack/T%d/C%d/%d.000", i%3, i%60, i)
			return st.AppendTurn(ctx, key, 0,
				storage.Record{Role: "user", Text: "question " + strconv.Itoa(i), Author: "U1", Time: testNow},
				storage.Record{Role: "assistant", Text: "an answer of a reasonable length for a chat reply", Time: testNow})
		}
	}
	start := testNow.AddDate(-1, 0, 0)
	for d := range 366 {
		for r := range 40 {
			n := d*40 + r
			work <- func() error {
				return st.AddUsage(ctx, storage.UsageEntry{
					Time: start.AddDate(0, 0, d), Workspace: fmt.Sprintf("slack/T%d", n%3), Channel: fmt.Sprintf("C%d", n%60),
					User: fmt.Sprintf("U%d", n%300), Model: fmt.Sprintf("model-%d", n%6),
					Counter: storage.Counter{Replies: 1, InputTokens: 1200, OutputTokens: 400, Cost: 0.003},
				})
			}
		}
	}
	close(work)
	wg.Wait()
}

// BenchmarkDashboard renders /admin over 100k conversations and a year of
// usage; the target is under 100 ms a page.
func BenchmarkDashboard(b *testing.B) {
	st := openStore(b)
	prefillLarge(b, st)
	h := newTestHandler(b, st, nil)
	for _, ws := range []string{"", "slack/T1"} {
		b.Run("ws="+ws, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest("GET", "/admin?ws="+ws, nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
