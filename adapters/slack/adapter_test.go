package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
)

// nopEngine ignores everything.
type nopEngine struct{}

func (nopEngine) HandleMessage(context.Context, bot.Message, bot.Output) error { return bot.ErrIgnored }
func (nopEngine) Addressed(context.Context, bot.Message) (bool, error)         { return false, nil }
func (nopEngine) HandleCommand(context.Context, bot.Command) bot.Answer {
	return bot.Answer{Text: "ok", Private: true}
}
func (nopEngine) ModelChoices(context.Context, string, int) []bot.Choice { return nil }

func newHTTPTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{BotToken: "xoxb-1"}, nil); err == nil {
		t.Error("nil engine accepted")
	}
	if _, err := New(Config{}, nopEngine{}); err == nil || !strings.Contains(err.Error(), "SLACK_BOT_TOKEN") {
		t.Errorf("empty token: %v", err)
	}
	a, err := New(Config{BotToken: "xoxb-1", APIURL: "http://127.0.0.1:1/api"}, nopEngine{})
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.APIURL != "http://127.0.0.1:1/api/" {
		t.Errorf("APIURL = %q, want a trailing slash", a.cfg.APIURL)
	}
	if a.commands["/model"] != "model" || a.commands["/forget"] != "forget" {
		t.Errorf("default commands = %v", a.commands)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	fake := slacktest.Start(t, slacktest.Options{})
	good := fake.Options()
	tests := []struct {
		name      string
		cfg       Config
		wantErr   []string
		forbidden string
	}{
		{"socket mode ok", Config{BotToken: good.BotToken, AppToken: good.AppToken}, nil, ""},
		{"http mode ok", Config{BotToken: good.BotToken, SigningSecret: "s"}, nil, ""},
		{"user token", Config{BotToken: "xoxp-user-secret-value", SigningSecret: "s"}, []string{"xoxb-", "invalid_auth", "reinstall"}, "user-secret-value"},
		{"app token as bot token", Config{BotToken: good.AppToken, SigningSecret: "s"}, []string{"SLACK_APP_TOKEN", "xoxb-"}, "test-token"},
		{"wrong bot token", Config{BotToken: "xoxb-wrong-secret-value", SigningSecret: "s"}, []string{"invalid_auth", "reinstall"}, "wrong-secret-value"},
		{"bad app token", Config{BotToken: good.BotToken, AppToken: "xoxa-secret-app"}, []string{"xapp-", "connections:write"}, "secret-app"},
		{"revoked app token", Config{BotToken: good.BotToken, AppToken: "xapp-other-secret"}, []string{"apps.connections.open", "Socket Mode"}, "other-secret"},
		{"no connection mode", Config{BotToken: good.BotToken}, []string{"SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.APIURL = fake.APIURL()
			tt.cfg.Logger = testLogger()
			a, err := New(tt.cfg, nopEngine{})
			if err != nil {
				t.Fatal(err)
			}
			err = a.Check(context.Background())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check passed")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			if tt.forbidden != "" && strings.Contains(err.Error(), tt.forbidden) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestRunRefusesBadTokens(t *testing.T) {
	t.Parallel()
	fake := slacktest.Start(t, slacktest.Options{})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"bad bot token, socket mode", Config{BotToken: "xoxb-bad", AppToken: fake.Options().AppToken}},
		{"bad app token", Config{BotToken: fake.Options().BotToken, AppToken: "xapp-bad"}},
		{"bad bot token, http mode", Config{BotToken: "xoxb-bad", SigningSecret: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.APIURL = fake.APIURL()
			tt.cfg.Logger = testLogger()
			a, err := New(tt.cfg, nopEngine{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = a.Run(ctx)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("Run = %v (ctx %v), want a prompt error", err, ctx.Err())
			}
			if strings.Contains(err.Error(), "-bad") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestResolveTextAndHelpers(t *testing.T) {
	t.Parallel()
	if got := tsTime("1700000000.000100"); !got.Equal(time.Unix(1700000000, 100000)) {
		t.Errorf("tsTime = %v", got)
	}
	if !tsTime("bogus").IsZero() {
		t.Error("tsTime(bogus) not zero")
	}
	a, _ := New(Config{BotToken: "xoxb-1"}, nopEngine{})
	cmds := []struct {
		text, name, args string
		ok               bool
	}{
		{"/model gpt-4o", "model", "gpt-4o", true},
		{"/RESET", "reset", "", true},
		{"/system be brief\nand kind", "system", "be brief\nand kind", true},
		{"/unknown x", "", "", false},
		{"model gpt-4o", "", "", false},
	}
	for _, c := range cmds {
		name, args, ok := a.textCommand(c.text)
		if name != c.name || args != c.args || ok != c.ok {
			t.Errorf("textCommand(%q) = %q %q %v", c.text, name, args, ok)
		}
	}
	fails := []struct{ in, want string }{
		{"⚠️ The model is busy.", "⚠️ The model is busy."},
		{"Plain failure", ":warning: Plain failure"},
		{"", ":warning: Something went wrong while answering."},
		{"boom\ngoroutine 1 [running]:\nmain.main()", ":warning: boom"},
		{"ping @here <!channel>", ":warning: ping @\u2060here &lt;!channel&gt;"},
	}
	for _, f := range fails {
		if got := failText(f.in); got != f.want {
			t.Errorf("failText(%q) = %q, want %q", f.in, got, f.want)
		}
	}
}
