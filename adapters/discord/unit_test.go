package discord

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
)

func TestResolveText(t *testing.T) {
	t.Parallel()
	r := resolver{
		botID:    "1",
		botRoles: map[string]bool{"77": true},
		users:    map[string]string{"2": "Alice"},
		channel: func(id string) (string, bool) {
			if id == "5" {
				return "general", true
			}
			return "", false
		},
		role: func(id string) (string, bool) {
			if id == "9" {
				return "admins", true
			}
			return "", false
		},
	}
	for _, tc := range []struct {
		name, in, want string
		self           bool
	}{
		{"plain", "  hello  ", "hello", false},
		{"leading mention", "<@1> hello there", "hello there", true},
		{"nickname mention", "<@!1> hi", "hi", true},
		{"mention inside", "hey <@1> what's up", "hey what's up", true},
		{"mention at end", "thanks <@1>", "thanks", true},
		{"only mention", "<@1>", "", true},
		{"other user", "ask <@2> and <@!2>", "ask @Alice and @Alice", false},
		{"unknown user", "ask <@3>", "ask @user", false},
		{"channel", "see <#5> and <#6>", "see #general and #channel", false},
		{"role", "ping <@&9> <@&10>", "ping @admins @role", false},
		{"bot's managed role", "<@&77> help", "help", true},
		{"code keeps indentation", "<@1> fix:\n```\nif x {\n    y()\n}\n```", "fix:\n```\nif x {\n    y()\n}\n```", true},
		{"not a mention", "a <b> c <@x>", "a <b> c <@x>", false},
		{"broken mentions", "<@> <@12 <#> <@&> <@!", "<@> <@12 <#> <@&> <@!", false},
		{"adjacent", "<@2><#5>!", "@Alice#general!", false},
	} {
		got, self := r.resolveText(tc.in)
		if got != tc.want || self != tc.self {
			t.Errorf("%s: resolveText(%q) = %q, %v; want %q, %v", tc.name, tc.in, got, self, tc.want, tc.self)
		}
	}
}

func TestThreadName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "fallback"},
		{"  what is   Go?\nsecond line", "what is Go?"},
		{strings.Repeat("é", 120), strings.Repeat("é", 89) + "…"},
	} {
		if got := threadName(tc.in, "fallback"); got != tc.want {
			t.Errorf("threadName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCommandArgs(t *testing.T) {
	t.Parallel()
	opt := func(name string, typ discordgo.ApplicationCommandOptionType, v any, sub ...*discordgo.ApplicationCommandInteractionDataOption) *discordgo.ApplicationCommandInteractionDataOption {
		return &discordgo.ApplicationCommandInteractionDataOption{Name: name, Type: typ, Value: v, Options: sub}
	}
	const (
		sub  = discordgo.ApplicationCommandOptionSubCommand
		str  = discordgo.ApplicationCommandOptionString
		num  = discordgo.ApplicationCommandOptionInteger
		flag = discordgo.ApplicationCommandOptionBoolean
	)
	type opts = []*discordgo.ApplicationCommandInteractionDataOption
	for _, tc := range []struct {
		name  string
		canon string
		opts  opts
		want  string
	}{
		{"model set", "model", opts{opt("set", sub, nil, opt("model", str, "gpt-4o"))}, "gpt-4o"},
		{"model set scope", "model", opts{opt("set", sub, nil, opt("model", str, "gpt-4o"), opt("scope", str, "server"))}, "gpt-4o server"},
		{"model list", "model", opts{opt("list", sub, nil)}, "list"},
		{"model list filter page", "model", opts{opt("list", sub, nil, opt("filter", str, " gpt "), opt("page", num, float64(3)))}, "list gpt 3"},
		{"model show", "model", opts{opt("show", sub, nil)}, ""},
		{"system show", "system", nil, ""},
		{"system set", "system", opts{opt("prompt", str, "Be brief.")}, "Be brief."},
		{"system scope alone shows", "system", opts{opt("scope", str, "server")}, ""},
		{"system clear server", "system", opts{opt("prompt", str, "clear"), opt("scope", str, "server")}, "server: clear"},
		{"forget", "forget", nil, ""},
		{"forget confirmed", "forget", opts{opt("confirm", flag, true)}, "confirm"},
		{"forget not confirmed", "forget", opts{opt("confirm", flag, false)}, ""},
		{"reset", "reset", nil, ""},
	} {
		if got := commandArgs(tc.canon, tc.opts); got != tc.want {
			t.Errorf("%s: args = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"ok", func(c *Config) {}, ""},
		{"Bot prefix ok", func(c *Config) { c.Token = "Bot abc.def" }, ""},
		{"no token", func(c *Config) { c.Token = " " }, "DISCORD_BOT_TOKEN"},
		{"token with newline", func(c *Config) { c.Token = "abc\ndef" }, "line breaks"},
		{"bad url", func(c *Config) { c.APIURL = "discord.com/api" }, "DISCORD_API_URL"},
		{"bad archive", func(c *Config) { c.ThreadAutoArchive = 5 }, "auto-archive"},
		{"renamed command", func(c *Config) { c.CommandNames = map[string]string{"model": "/llm"} }, ""},
		{"bad command name", func(c *Config) { c.CommandNames = map[string]string{"model": "Model!"} }, "invalid"},
		{"duplicate command", func(c *Config) { c.CommandNames = map[string]string{"model": "reset"} }, "both use"},
		{"unknown command", func(c *Config) { c.CommandNames = map[string]string{"chat": "x"} }, "unknown command"},
	} {
		c := DefaultConfig()
		c.Token = "abc.def.ghi"
		tc.mod(&c)
		c.applyDefaults()
		err := c.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("%s: error leaks the token: %v", tc.name, err)
		}
	}
	if c := DefaultConfig(); !c.OpenThreads || c.APIURL != DefaultAPIURL || c.EditBudget != 5 || c.EditWindow != 5*time.Second {
		t.Errorf("DefaultConfig = %+v", c)
	}
}

func TestTransportRoutesUnderAPIURL(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.RequestURI())
		mu.Unlock()
		if strings.Contains(r.URL.Path, "/channels/") {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset-After", "0.3")
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"url":"wss://example.invalid","id":"1","username":"b","bot":true}`)
	}))
	defer hs.Close()
	p := newPacer(5, time.Second)
	tr := newTransport(hs.URL+"/proxy/api/v9/", nil, p, 50)
	c := &http.Client{Transport: tr}
	for _, u := range []string{
		discordgo.EndpointGateway,
		discordgo.EndpointUser("@me"),
		discordgo.EndpointChannelMessages("42") + "?limit=1",
	} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{"/proxy/api/v9/gateway", "/proxy/api/v9/users/@me", "/proxy/api/v9/channels/42/messages?limit=1"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	// The exhausted bucket of channel 42 pauses its pacer.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.wait(ctx, "42"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("pacer waited %s after X-RateLimit-Remaining: 0, want about 300ms", d)
	}
}

func TestMessageRouteChannel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/channels/1/messages":           "1",
		"/channels/1/messages/2":         "1",
		"/channels/1/messages?x=y":       "1",
		"/channels/1/messages/2/threads": "",
		"/channels/1/typing":             "",
		"/channels/1":                    "",
		"/users/@me":                     "",
	} {
		if got := messageRouteChannel(in); got != want {
			t.Errorf("messageRouteChannel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPacerSpacesWritesPerChannel(t *testing.T) {
	t.Parallel()
	p := newPacer(5, 500*time.Millisecond) // one write per 110 ms
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	times := map[string][]time.Time{}
	for _, ch := range []string{"a", "b"} {
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.wait(ctx, ch); err != nil {
					t.Error(err)
				}
				mu.Lock()
				times[ch] = append(times[ch], time.Now())
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for ch, ts := range times {
		first, last := ts[0], ts[0]
		for _, x := range ts {
			if x.Before(first) {
				first = x
			}
			if x.After(last) {
				last = x
			}
		}
		if span := last.Sub(first); span < 300*time.Millisecond {
			t.Errorf("channel %s: 4 writes within %s, want spaced ~110ms apart", ch, span)
		}
	}
	// Another channel is not slowed down by a busy one: with one write per
	// hour, a shared budget would hold the fresh channel for an hour.
	slow := newPacer(1, time.Hour)
	if err := slow.wait(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	fresh, cancelFresh := context.WithTimeout(ctx, 10*time.Second)
	defer cancelFresh()
	if err := slow.wait(fresh, "c"); err != nil {
		t.Errorf("fresh channel waited behind a busy one: %v", err)
	}
	// admit caps writes on the wire: 5 within the guard window, then waits.
	g := newPacer(5, 200*time.Millisecond) // guard 220ms
	begin := time.Now()
	for i := 0; i < 6; i++ {
		if err := g.admit(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("6 admits in %s, want the 6th held for the 220ms guard window", d)
	}
	// A block pauses the channel; cancellation ends the wait.
	p.block("d", time.Hour)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := p.wait(cctx, "d"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked wait = %v", err)
	}
}

func TestSplitMessageCountsUTF16(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("😀", 1500) // 1,500 runes, 3,000 UTF-16 units
	parts := splitMessage(text)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	for _, p := range parts {
		if n := utf16Len(p); n > 2000 {
			t.Errorf("part of %d UTF-16 units", n)
		}
	}
	if strings.Join(parts, "") != text {
		t.Error("parts do not reassemble the text")
	}
}

func TestBoundedMap(t *testing.T) {
	t.Parallel()
	m := newBoundedMap[int](3)
	for i, k := range []string{"a", "b", "c", "d"} {
		m.Put(k, i)
	}
	if _, ok := m.Get("a"); ok {
		t.Error("oldest key not evicted")
	}
	if v, ok := m.Get("d"); !ok || v != 3 || m.Len() != 3 {
		t.Errorf("d = %v %v, len %d", v, ok, m.Len())
	}
	if m.PutIfAbsent("d", 9) || !m.PutIfAbsent("e", 5) {
		t.Error("PutIfAbsent")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewTest(t, discordtest.Options{})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newAdapter := func(token, api string) *Adapter {
		c := DefaultConfig()
		c.Token, c.APIURL, c.Logger = token, api, quiet
		a, err := New(c, nil) // as cometbot doctor does
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx := context.Background()
	if err := newAdapter(srv.Token(), srv.APIURL()).Check(ctx); err != nil {
		t.Errorf("good token: %v", err)
	}
	err := newAdapter("wrong-secret-token", srv.APIURL()).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "DISCORD_BOT_TOKEN") || strings.Contains(err.Error(), "wrong-secret-token") {
		t.Errorf("bad token: %v", err)
	}
	err = newAdapter(srv.Token(), srv.URL+"/elsewhere/api/v9").Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "DISCORD_API_URL") {
		t.Errorf("wrong base: %v", err)
	}
	err = newAdapter(srv.Token(), "http://127.0.0.1:1/api/v9").Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), srv.Token()) {
		t.Errorf("unreachable: %v", err)
	}
	n := 0
	for _, c := range srv.Calls() {
		if c.Path == "/users/@me" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d calls to /users/@me at the fake, want 2", n)
	}
	if err := newAdapter(srv.Token(), srv.APIURL()).Run(ctx); err == nil || !strings.Contains(err.Error(), "engine") {
		t.Errorf("Run without an engine = %v", err)
	}
}

func TestRunFailsFastOnBadToken(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewTest(t, discordtest.Options{})
	c := DefaultConfig()
	c.Token, c.APIURL = "not-the-token", srv.APIURL()
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(c, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "DISCORD_BOT_TOKEN") || strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("Run = %v", err)
	}
	if ctx.Err() != nil {
		t.Error("Run retried instead of failing")
	}
}

func TestRunStopsWhileConnecting(t *testing.T) {
	t.Parallel()
	// A gateway lookup that never answers, and a gateway that never says HELLO.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	var silent *httptest.Server
	silent = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gateway") {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"url":"ws`+strings.TrimPrefix(silent.URL, "http")+`/ws"}`)
			return
		}
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, _, _ = c.ReadMessage() // never sends HELLO
	}))
	defer silent.Close()
	for _, tc := range []struct{ name, api string }{
		{"nothing listens", "http://127.0.0.1:1/api/v9"},
		{"lookup hangs", hang.URL + "/api/v9"},
		{"no hello", silent.URL + "/api/v9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			c.Token, c.APIURL = "tok", tc.api
			c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			a, err := New(c, newFakeEngine())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			if err := a.Run(ctx); err != nil {
				t.Errorf("Run = %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Run took %s to stop", d)
			}
			if err := a.Run(context.Background()); err == nil {
				t.Error("second Run did not fail")
			}
		})
	}
}
